"""Reading MATLAB ``.mat`` files robustly, whichever format MATLAB wrote them in.

The benchmark files of Xian et al., "Zero-Shot Learning — A Comprehensive Evaluation of the Good,
the Bad and the Ugly" (TPAMI 2018; the *xlsa17* release) are MATLAB files: most are v5 files, which
:func:`scipy.io.loadmat` reads, but re-saved feature files (``res101.mat`` is large) are often
MATLAB v7.3 files, which are HDF5 containers that only :mod:`h5py` reads. This module hides the
difference:

- :func:`read_mat` returns the requested variables as numpy arrays **in MATLAB orientation** for
  both formats (HDF5 stores MATLAB's column-major arrays transposed; they are transposed back here),
  so a MATLAB ``(dim, N)`` matrix is ``(dim, N)`` whichever way the file was written;
- :func:`cellstr` decodes a MATLAB cell array of strings (or a padded char matrix) to ``list[str]``;
- :func:`as_vector` flattens MATLAB's ``(N, 1)`` / ``(1, N)`` vectors to ``(N,)``.

Every failure is an :class:`~unseen.core.errors.DataError`: a missing file is
:class:`~unseen.core.errors.DataFileNotFound`; a truncated, corrupt or non-MATLAB file and missing keys are
:class:`~unseen.core.errors.DataFormatError`, with a message naming the file, what is wrong and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unseen.core.errors import DataFileNotFound, DataFormatError

__all__ = ["as_vector", "cellstr", "mat_keys", "read_mat"]

_NOT_MAT = (
    "is not a readable MATLAB file ({why}). Fix: check that the file is complete (re-copy or "
    "re-download it; a partial download is the usual cause) and that it is a MATLAB .mat file "
    "(v5, v7 or v7.3), not another format renamed to .mat."
)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise DataFileNotFound(
            f"MATLAB file '{path}' does not exist. Fix: check the path (and the folder it is in)."
        )
    if path.is_dir():
        raise DataFormatError(f"'{path}' is a folder, not a MATLAB .mat file. Fix: name the file.")


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


def mat_keys(path: str | Path) -> list[str]:
    """The variable names stored in a ``.mat`` file (v5: in file order; v7.3: alphabetical)."""
    path = Path(path)
    _check_path(path)
    if _is_hdf5(path):
        return _h5_keys(path)
    import scipy.io

    try:
        return [name for name, _, _ in scipy.io.whosmat(str(path))]
    except Exception as exc:  # noqa: BLE001 - any parser failure means "unreadable file"
        raise DataFormatError(f"'{path}' " + _NOT_MAT.format(why=_why(exc))) from exc


def read_mat(
    path: str | Path,
    keys: Sequence[str] | None = None,
    *,
    required: Sequence[str] = (),
    contents: str = "",
) -> dict[str, Any]:
    """Read variables from a MATLAB file (v5 via scipy, v7.3/HDF5 via h5py).

    Parameters
    ----------
    path:
        The ``.mat`` file.
    keys:
        Variables to read (others are skipped, which matters for large files with image-path cell
        arrays); ``None`` reads all. Keys absent from the file are simply absent from the result
        unless they are ``required``.
    required:
        Keys that must be present; if any is missing a :class:`DataFormatError` names the file, the
        missing keys, the keys found and (``contents``) what the file should contain.
    contents:
        A sentence describing what the file should hold, used in that message.

    Returns
    -------
    dict
        Key -> numpy array in MATLAB orientation (a ``(dim, N)`` MATLAB matrix is ``(dim, N)``).
        Cell arrays are object arrays; decode cells of strings with :func:`cellstr`.
    """
    path = Path(path)
    _check_path(path)
    wanted = None if keys is None else list(dict.fromkeys([*keys, *required]))
    if _is_hdf5(path):
        data, found = _read_h5(path, wanted)
    else:
        data, found = _read_v5(path, wanted)
    missing = [k for k in required if k not in data]
    if missing:
        if found is None:
            found = mat_keys(path)
        what = f" This file should contain {contents.rstrip('.')}." if contents else ""
        raise DataFormatError(
            f"MATLAB file '{path}' lacks required key(s) {missing}; keys found: {sorted(found)}.{what}"
        )
    return data


# -- MATLAB v4/v5/v7 (scipy) ----------------------------------------------------------------------
def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _read_v5(path: Path, wanted: list[str] | None) -> tuple[dict[str, Any], list[str] | None]:
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path), variable_names=wanted)
    except NotImplementedError as exc:
        # scipy recognises the v7.3 header but h5py could not open the HDF5 part.
        raise DataFormatError(
            f"'{path}' has a MATLAB v7.3 header but its HDF5 content could not be read "
            f"({_why(exc)}). Fix: the file is probably truncated; re-copy or re-download it."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for corrupt input
        raise DataFormatError(f"'{path}' " + _NOT_MAT.format(why=_why(exc))) from exc
    data = {k: v for k, v in raw.items() if not k.startswith("__")}
    return data, (list(data) if wanted is None else None)


# -- MATLAB v7.3 (HDF5, h5py) ---------------------------------------------------------------------
def _h5_keys(path: Path) -> list[str]:
    import h5py

    try:
        with h5py.File(str(path), "r") as f:
            return [k for k in f.keys() if not k.startswith("#")]
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DataFormatError(f"'{path}' " + _NOT_MAT.format(why=_why(exc))) from exc


def _read_h5(path: Path, wanted: list[str] | None) -> tuple[dict[str, Any], list[str]]:
    import h5py

    try:
        with h5py.File(str(path), "r") as f:
            found = [k for k in f.keys() if not k.startswith("#")]
            names = found if wanted is None else [k for k in wanted if k in found]
            data = {k: _h5_value(f, f[k], path, k) for k in names}
    except DataFormatError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise DataFormatError(f"'{path}' " + _NOT_MAT.format(why=_why(exc))) from exc
    return data, found


def _attr_text(obj: Any, name: str) -> str:
    value = obj.attrs.get(name)
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, np.ndarray):
        value = value.tolist()
        value = value[0] if isinstance(value, list) and value else value
        return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return str(value)


def _h5_value(f: Any, obj: Any, path: Path, key: str) -> Any:
    import h5py

    if isinstance(obj, h5py.Group):
        raise DataFormatError(
            f"MATLAB file '{path}': key '{key}' is a MATLAB struct or object, not an array. "
            "Fix: save that variable as a plain numeric matrix or cell array."
        )
    mclass = _attr_text(obj, "MATLAB_class")
    data = obj[()]
    empty = obj.attrs.get("MATLAB_empty")
    if empty is not None and np.asarray(empty).any():
        # MATLAB stores an empty array as its dimensions; rebuild an empty array of that shape.
        dims = tuple(int(d) for d in np.asarray(data).ravel())
        return "" if mclass == "char" else np.zeros(dims, dtype=np.float64)
    if h5py.check_dtype(ref=obj.dtype) is not None:
        cells = np.empty(np.shape(data), dtype=object)
        for idx in np.ndindex(cells.shape):
            cells[idx] = _h5_value(f, f[data[idx]], path, key)
        return cells.T
    if mclass == "char":
        chars = np.atleast_2d(np.asarray(data, dtype="<u2").T)
        rows = [bytes(row.astype("<u2")).decode("utf-16-le", "replace") for row in chars]
        return np.array(rows, dtype=str)
    if mclass == "logical":
        return np.asarray(data).astype(bool).T
    arr = np.asarray(data)
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        arr = arr["real"] + 1j * arr["imag"]
    if arr.dtype.kind in "SO":
        # Plain HDF5 strings (written by h5py rather than MATLAB).
        arr = np.array([_decode(x) for x in arr.ravel()], dtype=str).reshape(arr.shape)
    return arr.T


def _decode(x: Any) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


# -- MATLAB value helpers -------------------------------------------------------------------------
def as_vector(value: Any, path: str | Path, key: str) -> np.ndarray:
    """A MATLAB ``(N, 1)``, ``(1, N)`` or ``(N,)`` array as a 1-D numpy vector.

    Raises :class:`DataFormatError` naming the file and key when the array is a real matrix.
    """
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr.reshape(1)
    if arr.ndim == 1:
        return arr
    if sum(d != 1 for d in arr.shape) <= 1:
        return arr.reshape(-1)
    raise DataFormatError(
        f"MATLAB file '{path}': key '{key}' should be a vector (N x 1), got a matrix of shape "
        f"{arr.shape}. Fix: store it as a single column."
    )


def cellstr(value: Any, path: str | Path, key: str) -> list[str]:
    """Decode a MATLAB cell array of strings (or a space-padded char matrix) to ``list[str]``.

    Accepts what :func:`read_mat` returns for either file format: an object array of cells, each a
    one-element string array (scipy) or a string array (h5py), or a string array for a char matrix.
    Cells are read in MATLAB (column-major) order, so an ``(n, 1)`` or ``(1, n)`` cell gives n names.
    """
    if isinstance(value, str):
        return [value]
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        # A char matrix: one string per row, right-padded with spaces by MATLAB.
        return [_decode(s).rstrip(" ") for s in arr.ravel(order="F")]
    if arr.dtype != object:
        raise DataFormatError(
            f"MATLAB file '{path}': key '{key}' should be a cell array of strings, got a "
            f"{arr.dtype} array of shape {arr.shape}. Fix: store the names as a cell array "
            "(e.g. cellstr(names) in MATLAB, or a numpy object array of str with scipy.io.savemat)."
        )
    out = []
    for i, cell in enumerate(arr.ravel(order="F")):
        if isinstance(cell, str | bytes):
            out.append(_decode(cell))
            continue
        c = np.asarray(cell)
        if c.dtype.kind in "US" and c.size <= 1:
            out.append(_decode(c.item()) if c.size else "")
        elif c.size == 0:
            out.append("")
        else:
            raise DataFormatError(
                f"MATLAB file '{path}': key '{key}' cell {i + 1} holds a {c.dtype} array of shape "
                f"{c.shape}, not a single string. Fix: every cell must be one row of text."
            )
    return out
