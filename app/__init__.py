"""rollcall: a SCIM 2.0 service provider that keeps an organization's roster."""

__version__ = "0.1.0"
