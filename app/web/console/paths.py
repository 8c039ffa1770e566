"""Which paths are the console's: `/` and everything under /console. They answer HTML and take a session cookie;
every other path keeps its bearer token and its JSON."""

CONSOLE_PREFIX = "/console"
STATIC_PREFIX = "/console/static/"
SIGN_IN = "/console/sign-in"
HOME = "/console/members"


def is_console_path(path: str) -> bool:
    return path == "/" or path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
