import json
import os
import stat
from pathlib import Path

import pytest

from sanalpos_common.crypto.keyring import Keyring, KeyState
from sanalpos_common.keys_cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_rotate_disable_destroy_cycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = str(tmp_path / "pan.json")
    assert run(capsys, "generate", "--file", f, "--key-id", "pan")[0] == 0
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert run(capsys, "generate", "--file", f, "--key-id", "pan")[0] == 1  # no silent overwrite
    assert run(capsys, "rotate", "--file", f)[0] == 0
    code, out, _ = run(capsys, "status", "--file", f, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["active"] == 2
    assert [v["state"] for v in doc["versions"]] == ["decrypt_only", "active"]
    key_b64 = json.loads(Path(f).read_text())["keys"]["1"]
    assert key_b64 not in out  # status never prints key material
    code, out, err = run(capsys, "destroy", "--file", f, "--version", "1")
    assert code == 1 and "refusing" in err  # no proof that nothing references v1
    assert run(capsys, "destroy", "--file", f, "--version", "2", "--unreferenced")[0] == 1
    assert run(capsys, "disable", "--file", f, "--version", "1", "--suspend")[0] == 0
    assert Keyring.from_json(Path(f).read_text()).state(1) is KeyState.DISABLED
    assert run(capsys, "enable", "--file", f, "--version", "1")[0] == 0
    assert run(capsys, "disable", "--file", f, "--version", "1")[0] == 0
    assert run(capsys, "destroy", "--file", f, "--version", "1", "--unreferenced")[0] == 0
    ring = Keyring.from_json(Path(f).read_text())
    assert ring.state(1) is KeyState.DESTROYED and 1 not in ring.keys
    code, out, _ = run(capsys, "status", "--file", f)
    assert "destroyed" in out and "<- writes" in out


def test_refuses_a_world_readable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "pan.json"
    f.write_text(Keyring.generate("pan").to_json())
    os.chmod(f, 0o644)
    code, _, err = run(capsys, "rotate", "--file", str(f))
    assert code == 1 and "chmod 600" in err
    assert run(capsys, "status", "--file", str(f), "--no-permission-check")[0] == 0


def test_cvc_rotate_creates_and_maintains_the_time_bucketed_keyring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = str(tmp_path / "cvc.json")
    assert run(capsys, "cvc-rotate", "--file", f)[0] == 0
    ring = Keyring.from_json(Path(f).read_text())
    assert ring.key_id == "cvc" and len(ring.keys) == 2
    assert run(capsys, "cvc-rotate", "--file", f)[0] == 0
    assert Keyring.from_json(Path(f).read_text()) == ring
    assert run(capsys, "cvc-rotate", "--file", f, "--ttl", "3600")[0] == 1
