"""What every benchmark's figure does the same way: matplotlib without a display, and the save.

Each benchmark draws its own axes between the two::

    plt = figures.pyplot()
    if plt is None:
        return figures.not_drawn(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ...
    return figures.save(fig, path)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the file-only Agg backend, or None where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def not_drawn(path: Path) -> str:
    return f"matplotlib is not installed in this interpreter ({sys.executable}): {path} not drawn"


def save(fig: Any, path: Path, *, dpi: int = 110) -> str:
    """Lay out, write ``path`` (its folder made if need be), free the figure; the line to print."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.clear()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"figure: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
