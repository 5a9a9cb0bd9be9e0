"""The ``dummy`` provider: one file per ``dummy_file`` in the provider's
``directory``; the file's first line is kvmnet's ownership mark."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from kvmnet.sdk import LiveObject, Probe, Provider, ProviderError, parse_mark
from kvmnet.sdk.files import atomic_write


class DummyProvider(Provider):
    name = "dummy"
    resource_types = ("dummy_file",)
    config_schema = {"type": "object", "properties": {"directory": {"type": "string"}},
                     "required": ["directory"], "additionalProperties": False}

    @property
    def directory(self) -> Path:
        return Path(self.config["directory"])

    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        out = {}
        if not self.directory.is_dir():
            raise ProviderError(f"dummy: directory {self.directory} does not exist")
        for path in sorted(self.directory.iterdir()):
            first, _, rest = path.read_text().partition("\n")
            mode = f"{path.stat().st_mode & 0o777:04o}"
            out[path.name] = LiveObject(path.name, {"name": path.name, "content": rest.strip(), "mode": mode},
                                        parse_mark(first))
        return out

    def _write(self, after: dict, mark: str) -> tuple[dict, dict]:
        atomic_write(self.directory / after["name"], f"{mark}\n{after['content']}\n", mode=int(after["mode"], 8))
        return dict(after), {}

    def create(self, rtype: str, address: str, after: dict, mark: str) -> tuple[dict, dict]:
        if (self.directory / after["name"]).exists():
            raise ProviderError(f"dummy: {after['name']} exists already")
        return self._write(after, mark)

    def update(self, rtype, address, before, after, private, mark) -> tuple[dict, dict]:
        return self._write(after, mark)

    def delete(self, rtype: str, address: str, before: dict, private: dict) -> None:
        try:
            os.unlink(self.directory / before["name"])
        except FileNotFoundError:
            pass

    def probes(self, managed: dict) -> list[Probe]:
        """Each managed file is still there (``apply --probe`` reverts a change that
        removed one)."""
        def exists(path: Path):
            return lambda timeout: None if path.is_file() else f"{path} is missing"
        return [Probe(f"dummy file {m.address}", exists(self.directory / m.attrs["name"]), m.address)
                for m in managed.get("dummy_file", [])]
