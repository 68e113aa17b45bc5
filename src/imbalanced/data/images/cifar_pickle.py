"""Reading CIFAR's pickled batch files without letting a file run code.

torchvision's CIFAR files are Python pickles, and a plain `pickle.load` calls whatever function a
crafted file names. The format needs far less: dicts, lists, strings and numbers, plus numpy's own
array reconstruction. The unpickler here admits exactly those globals (checked against CIFAR
batches pickled by Python 2 and by numpy 1.x and 2.x) and refuses any other by name, unread.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from imbalanced.errors import UserError

try:  # numpy >= 2 keeps the reconstruction function in numpy._core; numpy 1.x in numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

# (module, name) -> object: what CIFAR batch files (and numpy arrays pickled by any numpy) need
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes as _codecs.encode(text, "latin1") under protocol 2 (a pure function)
    ("_codecs", "encode"): codecs.encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    """The file asks for a Python object outside the allowed ones."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def load_batch(path: str | Path) -> Any:
    """The content of one CIFAR batch file; UserError naming the file if it is not one."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            # latin1: Python 2's str (the original files) becomes bytes-as-text numpy accepts
            return _DataOnlyUnpickler(handle, encoding="latin1").load()
    except RefusedGlobal as refused:
        raise UserError(
            f"{path} is refused: it asks to load the Python object {refused}, and a CIFAR batch file "
            "holds only arrays, lists, strings and numbers; loading it could run code from the file. "
            "allowed: the files torchvision's CIFAR download writes (data.download=true)"
        ) from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file: name it
        first = str(error).splitlines()[0][:200] if str(error) else ""
        raise UserError(f"{path} is not a CIFAR batch file ({type(error).__name__}: {first})") from None
