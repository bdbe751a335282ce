"""Where Tributary keeps its state. One root, `TRIBUTARY_HOME` (default `./var`), so a test or
a second deployment points everything elsewhere by setting one variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(Path(os.environ.get("TRIBUTARY_HOME", "var")).resolve())

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def lake(self) -> Path:
        """Partitioned Parquet: raw generations and attribution shares."""
        return self.home / "lake"

    @property
    def catalog(self) -> Path:
        return self.home / "catalog"

    @property
    def models(self) -> Path:
        """Model versions fetched from platforms, verified against their sha256."""
        return self.home / "models"

    @property
    def features(self) -> Path:
        """Cached training-set gradient features, one folder per model version."""
        return self.home / "features"

    @property
    def statements(self) -> Path:
        return self.home / "statements"
