"""Every public name has exactly one public path, and every __all__ is truthful."""

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

PACKAGES = ("sandbox", "kernel", "orchestrator", "ai")


def public_modules():
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.endswith("__main__"):
                continue
            yield importlib.import_module(info.name)


MODULES = list(public_modules())


def is_public(module_name):
    return not any(part.startswith("_") for part in module_name.split("."))


@pytest.mark.parametrize(
    "module", [m for m in MODULES if hasattr(m, "__all__")], ids=lambda m: m.__name__
)
def test_all_lists_real_names_once(module):
    assert len(module.__all__) == len(set(module.__all__)), "duplicates in __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name!r}"


def test_each_class_and_function_is_exported_from_one_public_path():
    exporters = defaultdict(list)
    for module in MODULES:
        if not is_public(module.__name__):
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            ours = getattr(obj, "__module__", "").split(".")[0] in PACKAGES
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and ours:
                exporters[obj].append(f"{module.__name__}.{name}")
    repeated = {obj.__qualname__: paths for obj, paths in exporters.items() if len(paths) > 1}
    assert repeated == {}
