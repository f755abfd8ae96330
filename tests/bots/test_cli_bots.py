"""`clicktrail bots explain` and `import-ranges`, through the real root command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from clicktrail.cli import app

runner = CliRunner()

IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
SAFARI_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Dest": "document",
}


def explain(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["bots", "explain", *args], input=stdin)
    return result.exit_code, result.output


def test_single_request_human() -> None:
    headers = [arg for k, v in SAFARI_HEADERS.items() for arg in ("--header", f"{k}: {v}")]
    code, out = explain("--user-agent", IOS_SAFARI, "--ip", "172.58.0.1", *headers)
    assert code == 0, out
    assert json.loads(out) == {"verdict": "human", "score": 0, "reasons": []}


def test_single_request_preview_probe_and_timing() -> None:
    samsung = "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0"
    code, out = explain("--user-agent", samsung, "--ip", "172.58.0.1", "--ms-since-delivery", "800")
    assert code == 0
    assert json.loads(out) == {
        "verdict": "preview",
        "score": 100,
        "reasons": ["UA_PREVIEW_SAMSUNG"],
    }
    _, out = explain("--user-agent", IOS_SAFARI, "--method", "HEAD")
    assert json.loads(out)["reasons"] == ["METHOD_PROBE"]
    _, out = explain("--user-agent", IOS_SAFARI, "--ms-since-delivery", "-50")
    assert json.loads(out)["reasons"] == ["DT_BEFORE_DELIVERY"]
    _, out = explain()
    assert json.loads(out)["reasons"] == ["UA_MISSING"]


def test_spoofed_safari_from_a_cloud_is_explained() -> None:
    code, out = explain("--user-agent", IOS_SAFARI, "--ip", "52.95.110.1", "-H", "Accept: */*")
    assert code == 0
    result = json.loads(out)
    assert result["verdict"] == "scanner"
    assert "NET_HOSTING" in result["reasons"]
    assert "HDR_NO_SEC_FETCH" in result["reasons"]


def test_batch_from_a_file_prints_one_line_per_request(tmp_path: Path) -> None:
    lines = [
        {"user_agent": IOS_SAFARI, "ip": "172.58.0.1", "method": "GET", "headers": SAFARI_HEADERS},
        {"user_agent": "WhatsApp/2.23.20.0 A", "ip": "157.240.1.1"},
        {"user_agent": IOS_SAFARI, "method": "OPTIONS"},
        {"user_agent": IOS_SAFARI, "headers": SAFARI_HEADERS, "ms_since_delivery": 900},
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "\n".join(json.dumps(x) for x in lines[:2])
        + "\n\n"
        + "\n".join(json.dumps(x) for x in lines[2:])
    )
    code, out = explain("--batch", str(path))
    assert code == 0, out
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["verdict"] for r in results] == ["human", "preview", "probe", "suspect"]
    assert results[1]["reasons"] == ["UA_PREVIEW_WHATSAPP"]
    assert results[3]["reasons"] == ["DT_DELIVERY_LT_2S"]


def test_batch_from_stdin() -> None:
    stdin = json.dumps({"user_agent": "curl/8.5.0", "ip": "52.95.110.1"}) + "\n"
    code, out = explain("--batch", "-", stdin=stdin)
    assert code == 0
    assert json.loads(out) == {"verdict": "automation", "score": 95, "reasons": ["UA_BOT_LIST"]}


def test_bad_batch_line_names_the_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"user_agent": IOS_SAFARI}) + "\n{not json\n")
    code, out = explain("--batch", str(path))
    assert code == 2
    assert "line 2" in out and "invalid JSON" in out
    for bad, message in [
        ({"user_agent": 5}, "user_agent must be a string"),
        ({"ip": "999.1.1.1"}, "is not an IP address"),
        ({"headers": ["accept"]}, "headers must be an object"),
        ({"ms_since_delivery": "soon"}, "ms_since_delivery must be a number"),
        ({"user-agent": "x"}, "unknown key(s) user-agent"),
        ([1, 2], "expected a JSON object"),
    ]:
        code, out = explain("--batch", "-", stdin=json.dumps(bad) + "\n")
        assert code == 2, bad
        assert "line 1" in out and message in out, out


def test_bad_single_options_exit_2(tmp_path: Path) -> None:
    code, out = explain("--user-agent", IOS_SAFARI, "--header", "no-colon")
    assert code == 2 and "NAME:VALUE" in out
    code, out = explain("--ip", "nope")
    assert code == 2 and "--ip" in out
    code, out = explain("--batch", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in out


def test_import_ranges_then_explain_with_them(tmp_path: Path) -> None:
    aws = tmp_path / "ip-ranges.json"
    aws.write_text(
        json.dumps(
            {
                "syncToken": "1",
                "prefixes": [{"ip_prefix": "198.51.100.0/24", "service": "EC2"}],
                "ipv6_prefixes": [],
            }
        )
    )
    csv_path = tmp_path / "nets.csv"
    result = runner.invoke(app, ["bots", "import-ranges", str(aws), "--output", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert csv_path.read_text().splitlines() == [
        "cidr,owner,kind,source",
        "198.51.100.0/24,Amazon AWS,hosting,aws",
    ]
    headers = [arg for k, v in SAFARI_HEADERS.items() for arg in ("-H", f"{k}:{v}")]
    desktop = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:139.0) Gecko/20100101 Firefox/139.0"
    code, out = explain(
        "--user-agent", desktop, "--ip", "198.51.100.9", "--networks", str(csv_path), *headers
    )
    assert code == 0, out
    assert json.loads(out) == {"verdict": "scanner", "score": 60, "reasons": ["NET_HOSTING"]}
    stdout = runner.invoke(app, ["bots", "import-ranges", str(aws)])
    assert stdout.output.startswith("cidr,owner,kind,source\n")


def test_import_ranges_bad_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "ips-v4"
    bad.write_text("1.2.3.0/24\nnot-a-cidr\n")
    result = runner.invoke(app, ["bots", "import-ranges", str(bad)])
    assert result.exit_code == 2
    assert "line 2" in result.output
