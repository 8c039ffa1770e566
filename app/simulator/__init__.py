"""An identity-provider simulator: JumpCloud, Okta and Entra as rollcall's clients.

It is a client and nothing else: it speaks to rollcall over HTTP only (SCIM, and /api for the roster), so it can
play against any rollcall, local or behind a proxy. `rollcall demo` plays a story through it; `rollcall selftest`
replays each provider's dialect against a deployment and says what breaks and why.
"""
