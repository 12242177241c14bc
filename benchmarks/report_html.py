"""``OUT/report.html``: one self-contained results page (no server, no CDN; CSS, JS, the radar and thumbnails inline).

The page shows the capability radar (inline SVG; a capability no task measured is a gap marked "not evaluated",
never a zero), the per-task table (metric, score, samples, scored, excluded, failed, the denominator a re-score
used) and the per-subtask table with sample counts, and a per-sample browser: thumbnails of the images or video
frames, prompt, response, parsed answer, score and error, filtered by task, by status (failed, wrong, correct) and,
with ``--compare OUT2``, by what changed against the other run (improved, regressed, changed), with the other run's
score and response beside each sample.

Thumbnails need the dataset: they come from the docs the task's adapter builds from ``--data-root`` (``<root>/<task>``)
or from the folder a re-score recorded (``results.json`` ``data_root``); at most ``thumbs_per_task`` samples per task
get them (96 px JPEG data URLs). Prompts and responses longer than :data:`MAX_TEXT` characters are cut on the page
(``samples.jsonl`` keeps them whole).
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path
from typing import Any

from benchmarks.records import read_records, to_jsonable
from dppo_embodied.taxonomy import BY_SLUG, SLUGS

logger = logging.getLogger(__name__)

MAX_TEXT = 4000
THUMB_SIDE = 96


# ------------------------------------------------------------------------------------------------- the radar
def radar_svg(series: dict[str, list[float | None]], size: int = 420) -> str:
    """An inline SVG radar of the 9 capability scores (0-100) of one or more runs; ``None`` is a gap (no line to or
    from that axis, its label marked "not evaluated"), never a zero."""
    c, r = size / 2, size / 2 - 80
    n = len(SLUGS)
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")

    def xy(i: int, v: float) -> tuple[float, float]:
        a = -math.pi / 2 + 2 * math.pi * i / n
        return c + r * v / 100 * math.cos(a), c + r * v / 100 * math.sin(a)

    def pt(i: int, v: float) -> str:
        x, y = xy(i, v)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
             'role="img" aria-label="capability radar">']
    for ring in (25, 50, 75, 100):
        pts = " ".join(pt(i, ring) for i in range(n))
        parts.append(f'<polygon points="{pts}" fill="none" stroke="#ddd"/>')
    missing = {i for i in range(n) if all(vals[i] is None for vals in series.values())}
    for i, slug in enumerate(SLUGS):
        x, y = xy(i, 100)
        lx, ly = xy(i, 122)
        parts.append(f'<line x1="{c}" y1="{c}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        name = html.escape(BY_SLUG[slug].name)
        note = f'<tspan x="{lx:.1f}" dy="1.1em" class="gap">not evaluated</tspan>' if i in missing else ""
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" class="axis" data-slug="{slug}">'
                     f'{name}{note}</text>')
    for k, (label, vals) in enumerate(series.items()):
        color = colors[k % len(colors)]
        if all(v is not None for v in vals):
            pts = " ".join(pt(i, float(v)) for i, v in enumerate(vals) if v is not None)
            parts.append(f'<polygon points="{pts}" fill="{color}" fill-opacity="0.12" stroke="none"/>')
        for i, v in enumerate(vals):
            w = vals[(i + 1) % n]
            if v is not None and w is not None:
                (x1, y1), (x2, y2) = xy(i, float(v)), xy((i + 1) % n, float(w))
                parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
                             'stroke-width="2"/>')
            if v is not None:
                x, y = xy(i, float(v))
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}" class="pt">'
                             f'<title>{html.escape(label)}: {BY_SLUG[SLUGS[i]].name} {float(v):.1f}</title></circle>')
        parts.append(f'<text x="8" y="{16 + 16 * k}" fill="{color}" class="legend">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ thumbnails
def _thumbs_of(doc: Any) -> list[str]:
    """Up to three JPEG data URLs of a doc's media: the images, else first/middle/last video frames."""
    from dppo_embodied.images import to_data_url
    from dppo_embodied.media import sample_frames

    sources: list[Any] = list(doc.images[:3])
    if not sources and doc.video is not None:
        sources = list(sample_frames(doc.video, 3))
    return [to_data_url(s, quality=70, max_side=THUMB_SIDE) for s in sources]


def thumbnails(task: str, entry: dict[str, Any], data_root: Path | None, limit: int,
               ids: list[str]) -> dict[str, list[str]]:
    """id -> data URLs for the first ``limit`` of ``ids`` (the run's samples, in order), built from the docs of the
    task's dataset folder (``{}`` when it is not at hand)."""
    from benchmarks.runner import load_docs
    from benchmarks.task import TaskManager

    root = Path(entry["data_root"]) if entry.get("data_root") else data_root / task if data_root else None
    if limit <= 0 or root is None or not root.is_dir():
        return {}
    try:
        spec = TaskManager().get(task)
        if spec.media == "env":
            return {}
        subtasks = tuple(s for s in spec.subtasks if s in set(entry.get("subtask_names") or []))
        docs = load_docs(spec, root, subtasks if spec.subtasks else None)
    except Exception as e:  # a report must not fail because the data moved: the page says there are no thumbnails
        logger.warning("report: no thumbnails for %s (%s)", task, e)
        return {}
    wanted = set(ids[:limit])
    out: dict[str, list[str]] = {}
    for doc in (d for d in docs if d.id in wanted):
        try:
            out[doc.id] = _thumbs_of(doc)
        except Exception as e:  # one unreadable image: that sample has no thumbnail
            logger.debug("report: thumbnail of %s/%s failed: %s", task, doc.id, e)
    return out


# ---------------------------------------------------------------------------------------------- page data
def _cut(text: Any) -> Any:
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + f" [... {len(text) - MAX_TEXT} more characters in samples.jsonl]"
    return text


def page_data(data: dict[str, Any], out: Path, other: dict[str, Any] | None = None, out_b: Path | None = None,
              data_root: Path | None = None, thumbs_per_task: int = 60) -> dict[str, Any]:
    """Everything the page shows, as JSON-safe data (the page renders it; tests read it too)."""
    tasks, subtasks, samples = [], [], []
    for task, e in data["tasks"].items():
        eb = (other or {}).get("tasks", {}).get(task, {})
        recs = read_records(out / task / "samples.jsonl")
        recs_b = read_records(out_b / task / "samples.jsonl") if other is not None and out_b is not None else {}
        resp = e.get("responses") or {}
        tasks.append({"task": task, "metric": e.get("metric"), "overall": e.get("overall"), "n": e.get("n", 0),
                      "n_scored": e.get("n_scored", 0), "n_excluded": e.get("n_excluded", 0),
                      "n_failed": e.get("n_failed", 0), "denominator": resp.get("denominator"),
                      "dataset_samples": resp.get("dataset_samples"), "other": eb.get("overall") if eb else None})
        counts: dict[str, int] = {}
        for r in recs.values():
            key = f"{task}_{r['subtask']}" if r.get("subtask") else task
            counts[key] = counts.get(key, 0) + 1
        for name, score in (e.get("subtasks") or {}).items():
            subtasks.append({"task": task, "subtask": name, "score": score, "n": counts.get(name, 0),
                             "other": (eb.get("subtasks") or {}).get(name) if eb else None})
        subs = sorted({str(r["subtask"]) for r in recs.values() if r.get("subtask")})
        thumbs = thumbnails(task, {**e, "subtask_names": subs}, data_root, thumbs_per_task, list(recs))
        for rid, r in recs.items():
            b = recs_b.get(rid)
            samples.append({"task": task, "id": rid, "subtask": r.get("subtask"), "prompt": _cut(r.get("prompt")),
                            "response": _cut(r.get("response")), "parsed": to_jsonable(r.get("parsed")),
                            "score": r.get("score"), "error": r.get("error"), "thumbs": thumbs.get(rid, []),
                            "other": None if b is None else {"score": b.get("score"),
                                                             "response": _cut(b.get("response")),
                                                             "error": b.get("error")}})
    caps = [{"slug": s, "name": c["name"], "score": c["score"], "tasks": c["tasks"],
             "other": other["capabilities"][s]["score"] if other is not None else None}
            for s, c in data["capabilities"].items()]
    return {"title": out.name or str(out), "compare": out_b.name if out_b is not None else None,
            "run": data.get("run", {}), "updated": data.get("updated"), "tasks": tasks, "subtasks": subtasks,
            "capabilities": caps, "samples": samples}


# ------------------------------------------------------------------------------------------------- the page
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}td.num{text-align:right}.gap{fill:#999;font-style:italic}.axis{font-size:11px}
.na{color:#999;font-style:italic}.bad{background:#fde8e8}.good{background:#e8f6e8}#radar{float:right}
.thumb{height:64px;margin:1px;border:1px solid #ddd}pre{white-space:pre-wrap;max-height:12em;overflow:auto;
margin:0;font-size:12px}#controls label{margin-right:1em}.up{color:#197a19}.down{color:#b11}
"""

JS = r"""
(function(){
var D=JSON.parse(document.getElementById('report-data').textContent);
function el(t,a,kids){var e=document.createElement(t);for(var k in (a||{})){if(k==='text')e.textContent=a[k];
 else e.setAttribute(k,a[k]);}(kids||[]).forEach(function(c){e.appendChild(c);});return e;}
function fmt(v){return (v===null||v===undefined)?'-':Number(v).toFixed(2);}
function status(s){if(s.error)return 'failed';return (s.score!==null&&s.score>=0.5)?'correct':'wrong';}
function change(s){if(!s.other||s.score===null||s.other.score===null)return 'none';
 if(s.score>s.other.score)return 'improved';if(s.score<s.other.score)return 'regressed';
 return s.response===s.other.response?'same':'changed';}
var bySel=document.getElementById('f-task');
D.tasks.forEach(function(t){bySel.appendChild(el('option',{value:t.task,text:t.task}));});
var page=0,PER=100;
// filters can be preset in the address: report.html#task=erqa&status=failed&change=regressed&q=text
var H={};location.hash.replace(/^#/,'').split('&').forEach(function(kv){var p=kv.split('=');
 if(p[0])H[p[0]]=decodeURIComponent(p[1]||'');});
[['task','f-task'],['status','f-status'],['change','f-change'],['q','f-text']].forEach(function(k){
 if(H[k[0]]!==undefined)document.getElementById(k[1]).value=H[k[0]];});
function rows(){var t=bySel.value,st=document.getElementById('f-status').value,
 ch=document.getElementById('f-change').value,q=document.getElementById('f-text').value.toLowerCase();
 return D.samples.filter(function(s){if(t&&s.task!==t)return false;if(st&&st!==status(s)&&
 !(st==='not-correct'&&status(s)!=='correct'))return false;var c=change(s);
 if(ch&&!(ch===c||(ch==='changed'&&(c==='improved'||c==='regressed'||c==='changed'))))return false;
 if(q&&((s.id+' '+(s.prompt||'')+' '+(s.response||'')).toLowerCase().indexOf(q)<0))return false;return true;});}
function render(){var rs=rows(),body=document.getElementById('samples-body');body.textContent='';
 document.getElementById('n-shown').textContent=rs.length;
 var pages=Math.max(1,Math.ceil(rs.length/PER));if(page>=pages)page=pages-1;
 document.getElementById('page').textContent=(page+1)+' / '+pages;
 rs.slice(page*PER,page*PER+PER).forEach(function(s){
  var th=el('td',{},s.thumbs.map(function(u){return el('img',{src:u,'class':'thumb',alt:'media of '+s.id});}));
  var cells=[el('td',{text:s.task}),el('td',{text:s.id}),el('td',{text:s.subtask||''}),th,
   el('td',{},[el('pre',{text:s.prompt||''})]),el('td',{},[el('pre',{text:s.response===null?'':s.response})]),
   el('td',{text:JSON.stringify(s.parsed)}),el('td',{'class':'num',text:fmt(s.score)}),
   el('td',{text:s.error||''})];
  if(D.compare){var o=s.other||{};cells.push(el('td',{'class':'num',text:fmt(o.score)}));
   cells.push(el('td',{},[el('pre',{text:o.response||''})]));cells.push(el('td',{text:change(s)}));}
  var tr=el('tr',{'class':status(s)==='correct'?'good':'bad','data-status':status(s)},cells);
  body.appendChild(tr);});}
['f-task','f-status','f-change','f-text'].forEach(function(id){var e=document.getElementById(id);
 e.addEventListener('input',function(){page=0;render();});});
document.getElementById('prev').addEventListener('click',function(){if(page>0){page--;render();}});
document.getElementById('next').addEventListener('click',function(){page++;render();});
if(!D.compare){document.getElementById('f-change').disabled=true;}
render();document.body.setAttribute('data-ready','1');
})();
"""


def _num(v: Any) -> str:
    return '<td class="num na">-</td>' if v is None else f'<td class="num">{float(v):.2f}</td>'


def _delta(a: Any, b: Any) -> str:
    if a is None or b is None:
        return '<td class="num na">-</td>'
    d = float(a) - float(b)
    return f'<td class="num {"up" if d > 0 else "down" if d < 0 else ""}">{d:+.2f}</td>'


def render_html(page: dict[str, Any], series: dict[str, list[float | None]]) -> str:
    """The complete page."""
    e = html.escape
    cmp_ = page["compare"]
    head = "".join(f"<th>{e(h)}</th>" for h in ["task", "metric", "score", "samples", "scored", "excluded", "failed",
                                               "denominator", *([cmp_, "delta"] if cmp_ else [])])
    trs = []
    for t in page["tasks"]:
        den = "-" if t["denominator"] is None else f"{t['denominator']} of {t['dataset_samples']}"
        row = (f"<td>{e(t['task'])}</td><td>{e(str(t['metric']))}</td>{_num(t['overall'])}"
               f"<td class='num'>{t['n']}</td><td class='num'>{t['n_scored']}</td><td class='num'>{t['n_excluded']}"
               f"</td><td class='num'>{t['n_failed']}</td><td class='num'>{den}</td>")
        if cmp_:
            row += _num(t["other"]) + _delta(t["overall"], t["other"])
        trs.append(f"<tr data-task='{e(t['task'])}'>{row}</tr>")
    subs = "".join(f"<tr><td>{e(s['task'])}</td><td>{e(s['subtask'])}</td>{_num(s['score'])}"
                   f"<td class='num'>{s['n']}</td>" + (_num(s["other"]) + _delta(s["score"], s["other"]) if cmp_
                                                        else "") + "</tr>" for s in page["subtasks"])
    caps = "".join(f"<tr data-slug='{c['slug']}'><td>{e(c['name'])}</td>"
                   + (_num(c["score"]) if c["score"] is not None else "<td class='na'>not evaluated</td>")
                   + f"<td>{e(', '.join(c['tasks'])) or '-'}</td>"
                   + (_num(c["other"]) + _delta(c["score"], c["other"]) if cmp_ else "") + "</tr>"
                   for c in page["capabilities"])
    cmp_cols = f"<th>{e(cmp_)} score</th><th>{e(cmp_)} response</th><th>change</th>" if cmp_ else ""
    run = page.get("run") or {}
    data = json.dumps(to_jsonable(page)).replace("<", "\\u003c")  # ASCII JSON that no "</script>" can end
    n_failed = sum(1 for s in page["samples"] if s["error"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report: {e(page['title'])}</title>
<style>{CSS}</style></head>
<body>
<h1>Evaluation report: {e(page['title'])}{f' vs {e(cmp_)}' if cmp_ else ''}</h1>
<p>Model <code>{e(str(run.get('model', '?')))}</code> via <code>{e(str(run.get('backend', '?')))}</code>;
updated {e(str(page.get('updated') or ''))}. <span id="n-samples">{len(page['samples'])}</span> samples in
<span id="n-tasks">{len(page['tasks'])}</span> task(s), <span id="n-failed">{n_failed}</span> failed.</p>
<div id="radar">{radar_svg(series)}</div>
<h2>Capabilities</h2>
<table id="capabilities"><thead><tr><th>capability</th><th>score</th><th>tasks</th>
{f'<th>{e(cmp_)}</th><th>delta</th>' if cmp_ else ''}</tr></thead><tbody>{caps}</tbody></table>
<h2>Tasks</h2><table id="tasks"><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>
<h2>Subtasks</h2><table id="subtasks"><thead><tr><th>task</th><th>subtask</th><th>score</th><th>samples</th>
{f'<th>{e(cmp_)}</th><th>delta</th>' if cmp_ else ''}</tr></thead><tbody>{subs}</tbody></table>
<h2 style="clear:both">Samples</h2>
<div id="controls"><label>task <select id="f-task"><option value="">all</option></select></label>
<label>status <select id="f-status"><option value="">all</option><option value="failed">failed (error)</option>
<option value="not-correct">failed or wrong</option><option value="wrong">wrong</option>
<option value="correct">correct</option></select></label>
<label>vs {e(cmp_ or 'compare run')} <select id="f-change"><option value="">all</option>
<option value="changed">changed</option><option value="improved">improved</option>
<option value="regressed">regressed</option><option value="same">same</option></select></label>
<label>search <input id="f-text" type="search"></label>
<button id="prev">&lt;</button> page <span id="page"></span> <button id="next">&gt;</button>
shown: <span id="n-shown"></span></div>
<table id="samples"><thead><tr><th>task</th><th>id</th><th>subtask</th><th>media</th><th>prompt</th>
<th>response</th><th>parsed</th><th>score</th><th>error</th>{cmp_cols}</tr></thead><tbody id="samples-body">
</tbody></table>
<script type="application/json" id="report-data">{data}</script>
<script>{JS}</script>
</body></html>
"""


def write_html(path: Path, page: dict[str, Any], series: dict[str, list[float | None]]) -> Path:
    """Write the page to ``path``."""
    path.write_text(render_html(page, series), encoding="utf-8")
    return path
