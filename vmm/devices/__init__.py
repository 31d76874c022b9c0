"""Device registry: one device per module, registered under its Palacios class name.

Lookups are case-insensitive (Palacios compares class names with strcasecmp). Importing this
package imports every device module so that the registry is complete.
"""
import importlib
import pkgutil

from v3tools.errors import V3Error

_REGISTRY = {}


def register(class_name):
    """Class decorator: `@register("8254_PIT")`. A duplicate name fails at import."""

    def deco(cls):
        key = class_name.upper()
        if key in _REGISTRY:
            raise V3Error(f"device class {class_name} registered twice "
                          f"({_REGISTRY[key].__module__} and {cls.__module__})")
        cls.CLASS_NAME = class_name
        _REGISTRY[key] = cls
        return cls

    return deco


def lookup(class_name):
    load_all()
    return _REGISTRY.get(class_name.upper())


def known_classes():
    load_all()
    return sorted(cls.CLASS_NAME for cls in _REGISTRY.values())


def class_problem(class_name):
    """None if `v3 run` can build a device of this class; else why not (for build-time warnings)."""
    from vmm.board import NOT_YET_AVAILABLE
    if lookup(class_name) is not None:
        return None
    if class_name.upper() in NOT_YET_AVAILABLE:
        return (f"device class {class_name} is not available yet: v3 run will refuse it unless "
                f"given --omit {class_name}")
    return (f"unknown device class '{class_name}': v3 run will refuse it (known classes: "
            f"{', '.join(known_classes())})")


_loaded = False


def load_all():
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
