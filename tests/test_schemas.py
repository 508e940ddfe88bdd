"""The published JSON Schemas (docs/schemas/) and the models they are generated from: the
committed files are what ``gongkai schemas`` writes now, the real directory files fit them, and
a bad directory is refused naming the place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gongkai.cli.main import app
from gongkai.domain import safe_yaml
from gongkai.domain.directory_file import DirectoryError, DirectoryFile, validate_directory
from gongkai.storage.directory import expand_env, parse_directory
from tests.support import DIRECTORY, ENV, ITEM

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "docs" / "schemas"
DEMO = ROOT / "gongkai" / "demo" / "directory.yaml"


def schema_texts() -> dict[str, str]:
    import gongkai.cli.schemas as schemas  # registers the command on ``app``

    return schemas.schema_texts()


def directories() -> dict[str, Any]:
    """The demo's and the tests' directory files as parsed YAML (after ``${NAME}``)."""
    return {
        "demo": safe_yaml.load(DEMO.read_text("utf-8")),
        "tests": safe_yaml.load(expand_env(DIRECTORY, ENV)),
    }


def test_committed_schemas_are_what_the_command_generates(tmp_path: Path) -> None:
    expected = schema_texts()
    for name, text in expected.items():
        committed = PUBLISHED / name
        assert committed.exists(), f"{committed} missing: run `gongkai schemas`"
        assert committed.read_text("utf-8") == text, f"{name} is stale: run `gongkai schemas`"
    result = CliRunner().invoke(app, ["schemas", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, text in expected.items():
        assert (tmp_path / "out" / name).read_text("utf-8") == text
    assert json.loads(expected["directory.schema.json"])["title"] == "Gongkai directory file"


@pytest.mark.parametrize("which", ["demo", "tests"])
def test_real_directories_fit_the_model(which: str) -> None:
    directory = validate_directory(directories()[which])
    assert isinstance(directory, DirectoryFile) and directory.regions


def as_json(data: Any) -> Any:
    """YAML reads dates as dates; the schema describes the file's text, where they are strings."""
    return json.loads(json.dumps(data, default=lambda value: value.isoformat()))


def published_examples() -> list[tuple[str, str, Any]]:
    load = lambda path: as_json(safe_yaml.load(path.read_text("utf-8")))  # noqa: E731
    return [
        *[("directory.schema.json", name, data) for name, data in directories().items()],
        ("item.schema.json", "tests", ITEM),
        ("item.schema.json", "demo policy", load(ROOT / "gongkai/demo/policy.yaml")),
        (
            "item.schema.json",
            "demo interpretation",
            load(ROOT / "gongkai/demo/interpretation.yaml"),
        ),
        ("faq.schema.json", "demo", load(ROOT / "gongkai/demo/faq.yaml")),
        ("faq.schema.json", "tests", load(ROOT / "tests/data/faq_dev.yaml")),
    ]


def test_real_files_fit_the_published_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    for schema_name, example, data in published_examples():
        schema = json.loads((PUBLISHED / schema_name).read_text("utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        problems = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
        assert not problems, f"{example} against {schema_name}: {problems}"


def test_published_schema_refuses_what_the_model_refuses() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    schema = json.loads((PUBLISHED / "directory.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    data = directories()["tests"]
    village = data["regions"][0]["children"][0]["children"][0]
    village["targets"][0] = {"channel": "village_group"}
    village["code"] = "1506271002"
    data["accounts"]["fax"] = []
    paths: set[tuple[Any, ...]] = set()

    def collect(errors: Any) -> None:  # anyOf/oneOf keep their branches' errors in context
        for error in errors:
            paths.add(tuple(error.absolute_path))
            collect(error.context or [])

    collect(validator.iter_errors(data))
    assert ("accounts",) in paths
    assert ("regions", 0, "children", 0, "children", 0, "code") in paths
    assert ("regions", 0, "children", 0, "children", 0, "targets", 0) in paths


def refusal(text: str) -> DirectoryError:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(text, ENV)
    return caught.value


def fields(exc: DirectoryError) -> dict[str, str]:
    return {e.field: e.message for e in exc.errors}


VILLAGE = "regions[0].children[0].children[0]"


def test_a_bad_region_code_is_named() -> None:
    exc = refusal(DIRECTORY.replace('code: "150627100202"', 'code: "15062710020x"'))
    assert fields(exc) == {
        "regions[0].children[0].children[1].code": (
            "'15062710020x' is not a division code (2, 4, 6, 9 or 12 digits)"
        )
    }
    assert str(exc).startswith("regions[0].children[0].children[1].code: ")


def test_a_target_without_its_address_is_named() -> None:
    exc = refusal(DIRECTORY.replace('robot_key: "${ROBOT_1}"', "note: no key"))
    assert fields(exc) == {
        f"{VILLAGE}.targets[0].robot_key": "a village_group target needs robot_key"
    }
    exc = refusal(DIRECTORY.replace('robot_key: "${ROBOT_1}"', 'robot_key: "  "'))
    assert fields(exc) == {
        f"{VILLAGE}.targets[0].robot_key": "empty (is the environment variable set?)"
    }
    telegram = "\n              - {channel: telegram, account: ordos}"
    exc = refusal(DIRECTORY.replace('"139 0000 0001"]}', '"139 0000 0001"]}' + telegram))
    assert fields(exc) == {f"{VILLAGE}.targets[2].chat_id": "a telegram target needs chat_id"}
    loudspeaker = "\n              - {channel: loudspeaker, phones: ['13800000000']}"
    exc = refusal(DIRECTORY.replace('"139 0000 0001"]}', '"139 0000 0001"]}' + loudspeaker))
    assert fields(exc) == {f"{VILLAGE}.targets[2].account": "SMS targets name their SMS account"}


def test_an_unknown_channel_is_named() -> None:
    exc = refusal(DIRECTORY.replace("channel: village_group, robot_key: robot-3", "channel: fax"))
    assert fields(exc) == {
        "regions[0].children[1].children[0].targets[0].channel": (
            "unknown channel 'fax' for a target; known: village_group, sms, loudspeaker, telegram"
        )
    }
    exc = refusal(DIRECTORY.replace("  telegram:\n", "  pager:\n"))
    assert fields(exc) == {
        "accounts.pager": "unknown channel; known: loudspeaker, sms, telegram, village_group, "
        "wechat_mp"
    }


def test_a_wrong_type_deep_in_the_tree_is_named() -> None:
    exc = refusal(DIRECTORY.replace("languages: [mn, zh]", "languages: {mn: zh}"))
    assert list(fields(exc)) == [f"{VILLAGE}.languages"]
    exc = refusal(DIRECTORY.replace('"13800000000", "139 0000 0001"', '"13800000000", [1]'))
    assert list(fields(exc)) == [f"{VILLAGE}.targets[1].phones[1]"]
    exc = refusal(
        DIRECTORY.replace("chat_id", "x").replace(
            '"139 0000 0001"]}',
            '"139 0000 0001"]}\n              - {channel: telegram, '
            "account: ordos, chat_id: minus-one}",
        )
    )
    assert fields(exc) == {f"{VILLAGE}.targets[2].chat_id": "must be a number"}


def test_every_problem_is_named_at_once() -> None:
    text = (
        DIRECTORY.replace('code: "150627100202"', 'code: "1"')
        .replace("provider: aliyun", "provider: mobile")
        .replace("channel: village_group, robot_key: robot-3", "channel: fax")
    )
    assert set(fields(refusal(text))) == {
        "accounts.sms[0].provider",
        "regions[0].children[0].children[1].code",
        "regions[0].children[1].children[0].targets[0].channel",
    }


def test_the_file_keeps_its_loose_spellings() -> None:
    """Unquoted numbers, empty lists written as nothing, extra account and target fields."""
    data = parse_directory(
        """
accounts:
  sms:
    - {name: 7, provider: tencent, sdk_app_id: 1400000000, per_number_daily: 5}
  village_group:
regions:
  - code: 150627
    name: 伊金霍洛旗
    shape: county
    children:
    targets:
      - {channel: sms, account: 7, phones: [13800000000], template: urgent}
""",
        {},
    )
    directory = validate_directory(data)
    sms = directory.accounts.sms[0]
    assert sms.name == "7" and sms.model_extra == {"per_number_daily": 5}
    assert sms.sdk_app_id == "1400000000"
    region = directory.regions[0]
    assert region.code == "150627" and region.children == []
    target = region.targets[0]
    assert target.phones == ["13800000000"] and target.options() == {"template": "urgent"}
