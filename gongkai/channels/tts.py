"""Speech for loudspeaker scripts: a small engine interface, espeak-ng by default, a file cache.

A village committee that cannot read a script aloud can still play it. The engine is swappable
(``"espeak"`` or ``"package.module:Class"``) because a county may buy a better voice; the cache
keeps a retried delivery from synthesising the same script twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "EspeakEngine",
    "SpeechEngine",
    "SpeechUnavailable",
    "audio_for",
    "engine_from_spec",
]


class SpeechUnavailable(Exception):
    """This engine cannot speak this language (espeak-ng has no Mongolian voice)."""


@runtime_checkable
class SpeechEngine(Protocol):
    name: str
    media_type: str  # e.g. "audio/wav"
    extension: str  # e.g. "wav"

    def supports(self, lang: str) -> bool: ...

    async def synthesize(self, text: str, lang: str) -> bytes: ...


_CONVERTED = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg"}


class EspeakEngine:
    """Debian's espeak-ng: robotic but free, offline and always there."""

    name = "espeak"
    voices = {"zh": "cmn"}
    speed_wpm = 150  # a little slower than espeak's 175: listeners are outdoors

    def __init__(self, audio_format: str = "wav", binary: str = "espeak-ng") -> None:
        if audio_format not in _CONVERTED:
            raise ValueError(f"audio format must be one of {sorted(_CONVERTED)}")
        self.extension = audio_format
        self.media_type = _CONVERTED[audio_format]
        self.binary = binary

    def supports(self, lang: str) -> bool:
        return lang in self.voices

    async def synthesize(self, text: str, lang: str) -> bytes:
        voice = self.voices.get(lang)
        if voice is None:
            raise SpeechUnavailable(f"espeak-ng has no voice for {lang}")
        if shutil.which(self.binary) is None:
            raise SpeechUnavailable(f"{self.binary} is not installed")
        with tempfile.TemporaryDirectory(prefix="gongkai-tts-") as tmp:
            wav = Path(tmp) / "speech.wav"
            # text on stdin, not argv: no length limit and nothing for a shell to interpret
            await _run(
                [self.binary, "-v", voice, "-s", str(self.speed_wpm), "-b", "1", "-w", str(wav)],
                stdin=text.encode("utf-8"),
            )
            if self.extension == "wav":
                return wav.read_bytes()
            return await _convert(wav, self.extension)


async def _run(argv: list[str], stdin: bytes | None = None) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return out


async def _convert(wav: Path, audio_format: str) -> bytes:
    """WAV → mp3/ogg with sox; without sox (or its mp3 plug-in) there is nothing to convert."""
    if shutil.which("sox") is None:
        raise SpeechUnavailable(f"sox is needed to make {audio_format} audio")
    target = wav.with_suffix("." + audio_format)
    try:
        await _run(["sox", str(wav), str(target)])
    except RuntimeError as exc:
        raise SpeechUnavailable(f"sox cannot write {audio_format}: {exc}") from exc
    return target.read_bytes()


_ENGINES: dict[str, type] = {"espeak": EspeakEngine, "espeak-ng": EspeakEngine}


def engine_from_spec(spec: str | None = None, audio_format: str = "wav") -> SpeechEngine:
    """``"espeak"`` (the default) or ``"package.module:Class"`` for a county's own engine."""
    spec = (spec or "espeak").strip()
    if spec in _ENGINES:
        return _ENGINES[spec](audio_format=audio_format)
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"speech engine must be 'espeak' or 'module:Class', got {spec!r}")
    cls = getattr(importlib.import_module(module_name), class_name)
    engine = cls()
    if not isinstance(engine, SpeechEngine):
        raise TypeError(f"{spec} does not look like a speech engine (name, synthesize, …)")
    return engine


def _safe_name(item_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", item_id):
        return item_id
    return "item-" + hashlib.sha1(item_id.encode("utf-8")).hexdigest()[:20]


async def audio_for(
    item_id: str, lang: str, script_text: str, cache_dir: Path, engine: SpeechEngine
) -> Path:
    """The audio file of this script, synthesised once per item and language.

    The cache file is ``<item_id>.<lang>.<ext>``; a sidecar holds the hash of the text it was
    made from, so a corrected item gets new audio instead of the old words.
    """
    path = cache_dir / f"{_safe_name(item_id)}.{lang}.{engine.extension}"
    digest = hashlib.sha1(f"{engine.name}\n{script_text}".encode()).hexdigest()
    if await asyncio.to_thread(_is_cached, path, digest):
        return path
    audio = await engine.synthesize(script_text, lang)
    await asyncio.to_thread(_store, path, audio, digest)
    return path


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha1")


def _is_cached(path: Path, digest: str) -> bool:
    stamp = _stamp(path)
    return path.exists() and stamp.exists() and stamp.read_text().strip() == digest


def _store(path: Path, audio: bytes, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, audio)
    _write_atomically(_stamp(path), digest.encode())


def _write_atomically(path: Path, data: bytes) -> None:
    """Two workers may make the same file; readers see the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
