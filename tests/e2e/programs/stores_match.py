"""stores.py's match statement (3.10+ syntax): captures bind in the case's pattern line."""


def matching(command):
    match command.split():
        case [action]:
            verb, target = action, None
        case [action, obj]:
            verb, target = action, obj
        case _:
            verb = target = "?"
    return verb, target
