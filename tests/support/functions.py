"""Load a function's handler module the way Lambda does: its folder is the import root."""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_handler(name: str) -> ModuleType:
    """Import functions/<name>/app.py afresh (module-level singletons rebuilt for this test)."""
    folder = ROOT / "functions" / name
    local = {p.stem for p in folder.iterdir() if p.is_dir() or p.suffix == ".py"}
    for module in list(sys.modules):
        if module.split(".")[0] in local:
            del sys.modules[module]
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"{name}_app", folder / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"{name}_app"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        # app.py pauses the garbage collector while it loads (integrations.coldstart); a module that
        # fails to load never reaches its own `coldstart.loaded()`.
        gc.enable()
    return module
