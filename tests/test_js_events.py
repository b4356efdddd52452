"""clients/js/src/events.ts is generated from docs/asyncapi.yaml (clients/js/scripts/gen_events.py): a change to
the document without regenerating it (`npm run gen` in clients/js) fails here, in the quick loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "clients" / "js" / "scripts" / "gen_events.py"


def test_generated_events_match_the_asyncapi_document() -> None:
    r = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_client_topic_event_and_push_is_typed() -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    events_ts = (ROOT / "clients" / "js" / "src" / "events.ts").read_text()
    messages = spec["components"]["messages"]
    for entry in messages["msg"]["x-events"]:
        if set(entry["topicKinds"]) & {"event", "live", "user"}:
            assert f'  "{entry["name"]}": ' in events_ts, entry["name"]
    for push in messages["push"]["x-pushes"]:
        assert f'  "{push["event"]}": {{ data: ' in events_ts, push["event"]
