"""``gongkai schemas``: the JSON Schemas of the input files, written from the models that read
them, so an editor or a county's CI can check a file before it is imported and the published
schemas can never say something the service does not do.

Registered on the main CLI by importing this module (``cli.main()``'s list).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gongkai.cli.main import app, fail, out

if TYPE_CHECKING:
    from pydantic import BaseModel

DEFAULT_DIR = Path("docs/schemas")
# file name → (module, model, title); the models are imported when a schema is written, not
# for every command
SCHEMAS: dict[str, tuple[str, str, str]] = {
    "directory.schema.json": (
        "gongkai.domain.directory_file",
        "DirectoryFile",
        "Gongkai directory file",
    ),
    "item.schema.json": ("gongkai.domain.items", "ItemIn", "Gongkai item file"),
    "faq.schema.json": ("gongkai.faq.format", "FaqFile", "Gongkai FAQ file"),
}


def schema_of(model: type[BaseModel], title: str) -> dict[str, Any]:
    """The model's input schema (what a file may say), marked as generated."""
    schema = model.model_json_schema(mode="validation")
    schema["title"] = title
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "generated from Gongkai's models by `gongkai schemas`; do not edit by hand",
        **schema,
    }


def schema_texts() -> dict[str, str]:
    """File name → its text, byte for byte as the command writes it (the test compares these
    with the committed files)."""
    texts = {}
    for name, (module, model, title) in SCHEMAS.items():
        schema = schema_of(getattr(importlib.import_module(module), model), title)
        texts[name] = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
    return texts


@app.command("schemas")
def schemas(
    out_dir: Path = typer.Option(DEFAULT_DIR, "--out", help="the folder to write them to"),
) -> None:
    """Write the JSON Schemas of the directory, item and FAQ files."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in schema_texts().items():
            (out_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{out_dir}: {exc.strerror or exc}")
    out.print(f"wrote {', '.join(SCHEMAS)} to {out_dir}", highlight=False)
