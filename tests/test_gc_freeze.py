"""A served worker moves what start-up made out of the cyclic collector's sight: a full
collection then walks only what requests make (about 180,000 objects are there at start).
And it collects its youngest objects less often than Python's default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, gc, sys
from parlour.config import Settings
from parlour.main import create_app

async def main(freeze):
    app = create_app(Settings(data_dir=sys.argv[1], create_demo_app=False, gc_freeze=freeze))
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count(), gc.get_threshold()[0]

print(*asyncio.run(main(sys.argv[2] == "on")))
"""


def test_start_up_objects_are_frozen_only_when_asked(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "parlour.cli", "migrate"],
        env={"PARLOUR_DATA_DIR": str(tmp_path), "PATH": ""},
        check=True, capture_output=True,
    )  # fmt: skip

    def frozen(setting: str) -> tuple[int, int]:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path), setting],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        count, young = map(int, out.stdout.split())
        return count, young

    on, off = frozen("on"), frozen("off")
    assert on[0] > 50_000 and off[0] == 0
    assert on[1] == off[1] == 10_000  # the youngest generation's threshold, as configured
