"""The configuration file docs/server.md shows is one the server accepts, setting for setting."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

from wharf.server.config import ServerConfig, load_config

SERVER_MD = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def _toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", SERVER_MD.read_text(encoding="utf-8"), flags=re.S)


def test_every_toml_example_in_server_md_loads(tmp_path: Path) -> None:
    blocks = _toml_blocks()
    assert blocks, "docs/server.md shows no configuration file"
    for i, block in enumerate(blocks):
        file = tmp_path / f"example{i}.toml"
        file.write_text(block, encoding="utf-8")
        config = load_config(file, environ={})
        documented = tomllib.loads(block).get("server", {})
        for key, value in documented.items():
            loaded = getattr(config, key)
            assert (list(loaded) if isinstance(loaded, tuple) else loaded) == value, key
        assert isinstance(config, ServerConfig)
        if config.authenticator:  # a factory the example names must exist
            module, _, attribute = config.authenticator.partition(":")
            assert callable(getattr(importlib.import_module(module), attribute, None)), config.authenticator
