"""The tiny audio sandbox platform the audio tests share (the `audio_sandbox` fixture in
conftest.py builds it once per session, about 15 s)."""

from __future__ import annotations

from sandbox.audio_platform import AudioSandboxConfig

AUDIO_CFG = AudioSandboxConfig(
    n_works=None, catalog_limit=14, n_generations=12, model_size="tiny", train_steps=40,
    days=2, copies_per_transform=1,
)  # fmt: skip
