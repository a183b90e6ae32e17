from pathlib import Path

import pytest

from sanalpos_common.cli import main
from sanalpos_common.crypto.providers import read_keyring_file


def test_keys_commands_generate_rotate_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring_file = tmp_path / "pan.json"
    assert main(["keys", "generate", "--file", str(ring_file), "--key-id", "pan"]) == 0
    assert main(["keys", "rotate", "--file", str(ring_file)]) == 0
    ring = read_keyring_file(ring_file)
    assert ring.active_version == 2 and set(ring.keys) == {1, 2}
    assert main(["keys", "status", "--file", str(ring_file)]) == 0
    out = capsys.readouterr().out
    for key in ring.keys.values():
        assert key.hex() not in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_rewrap_requires_a_registered_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "rewrap", "--service", "no-such-service"]) == 2
    assert "no re-wrap job" in capsys.readouterr().err
