"""The API's reference page (``GET /docs``), rendered on the server from the OpenAPI document:
no script, no CDN, no asset; every text it shows is escaped."""

from __future__ import annotations

import html
import json
from typing import Any

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;
color:#1d2430}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #dde;text-transform:capitalize}
.op{border:1px solid #dde;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:3.5rem;font-weight:700;text-transform:uppercase}
.get{color:#1565c0}.post{color:#2e7d32}code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f6f8;padding:.6rem;overflow:auto;max-height:24rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #e3e5ea;padding:.2rem .5rem;
text-align:left;vertical-align:top}nav a{margin-right:.8rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _schema_link(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    return f"<code>{_e(json.dumps(schema))}</code>"


def render_docs(doc: dict[str, Any]) -> str:
    """Return the reference page of `doc` as one self-contained HTML document."""
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_e(doc['info']['title'])}</title>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(doc['info']['title'])}</h1><p>{_e(doc['info']['description'])}</p>",
        "<p>Authenticate with <code>Authorization: Bearer &lt;api key&gt;</code>. "
        'The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p><nav>',
    ]
    tags = [t["name"] for t in doc["tags"]]
    out += [f'<a href="#tag-{_e(t)}">{_e(t)}</a>' for t in tags]
    out.append('<a href="#schemas">schemas</a></nav>')
    for tag in tags:
        out.append(f'<h2 id="tag-{_e(tag)}">{_e(tag)}</h2>')
        for p, methods in doc["paths"].items():
            for method, op in methods.items():
                if tag not in op["tags"]:
                    continue
                out.append(
                    f'<div class=op id="{_e(op["operationId"])}"><div><span class="m {_e(method)}">'
                    f"{_e(method)}</span> <code>{_e(p)}</code> — {_e(op['summary'])}"
                    + ("" if op["security"] else " <em>(no key)</em>")
                    + "</div>"
                )
                if "description" in op:
                    out.append(f"<p>{_e(op['description'])}</p>")
                if op["parameters"]:
                    out.append("<table><tr><th>parameter</th><th>in</th><th>schema</th>"
                               "<th>meaning</th></tr>")  # fmt: skip
                    for prm in op["parameters"]:
                        req = " (required)" if prm.get("required") else ""
                        out.append(
                            f"<tr><td><code>{_e(prm['name'])}</code>{req}</td>"
                            f"<td>{_e(prm['in'])}</td><td>{_schema_link(prm['schema'])}</td>"
                            f"<td>{_e(prm['description'])}</td></tr>"
                        )
                    out.append("</table>")
                if "requestBody" in op:
                    for media, c in op["requestBody"]["content"].items():
                        out.append(
                            f"<p>Body <code>{_e(media)}</code>: {_schema_link(c['schema'])}</p>"
                        )
                out.append("<table><tr><th>status</th><th>content</th><th>when</th></tr>")
                for code, r in op["responses"].items():
                    content = ", ".join(
                        f"<code>{_e(media)}</code> {_schema_link(c['schema'])}"
                        for media, c in r.get("content", {}).items()
                    )
                    out.append(
                        f"<tr><td>{_e(code)}</td><td>{content}</td>"
                        f"<td>{_e(r['description'])}</td></tr>"
                    )
                out.append("</table></div>")
    out.append('<h2 id="schemas">schemas</h2>')
    for name, schema in doc["components"]["schemas"].items():
        out.append(
            f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>'
            f"<pre>{_e(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        )
    out.append("</body></html>")
    return "\n".join(out)
