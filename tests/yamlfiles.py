"""The one check every admin file's loader gets: a broken file is refused with
``file:line: sentence``, pointing at the line that is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hotline.yamldoc import YamlFileError


def assert_refused_at_line(
    load: Callable[[Path], object], path: Path, text: str, line: int, says: str
) -> None:
    """Write `text` to `path`: `load` must refuse it with ``path:line: ...`` saying `says`."""
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as error:
        load(path)
    assert str(error.value).startswith(f"{path}:{line}: "), error.value
    assert says in str(error.value), error.value
