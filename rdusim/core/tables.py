"""Tables the pipeline wrote, read back through the loader's checks (pandas; kept out of
:mod:`rdusim.core.loader` so that ``rdusim predict`` of a cached GPU row does not import pandas)."""
from __future__ import annotations

import re

import pandas as pd

from rdusim.core.errors import ConfigError, Described
from rdusim.core.loader import MAX_CSV_BYTES, decode_text, head_bytes


def read_table(path, field: str | None = None, max_bytes: int = MAX_CSV_BYTES, **read_csv_args):
    """A CSV file the pipeline wrote (a table of results) as a pandas DataFrame, after the checks of
    :func:`read_bytes` on its head (regular UTF-8 text file within ``max_bytes``); a parser error names the
    file and line, never the content."""
    field = field or f"table {path}"
    decode_text(head_bytes(path, field, max_bytes), field, str(path), "CSV text file")
    try:
        return pd.read_csv(path, **read_csv_args)
    except pd.errors.EmptyDataError:
        raise ConfigError(field, str(path), "a CSV file with a header and rows") from None
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{field} line {line[1]}" if line else field, Described("a line CSV cannot read"),
                          "rows with as many fields as the header") from None
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(field, str(path), "a UTF-8 CSV text file") from None
    except OSError as exc:
        raise ConfigError(field, str(path), f"a readable CSV file ({exc.strerror})") from None
