"""`feedbot classify`, `feedbot eval` and `feedbot explain` as a user runs them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from feedbot.cli import cli
from tests.classify.test_evaluate import CORPUS

MARKET = {
    "id": "m1", "title": "全国碳市场扩容 钢铁水泥铝冶炼纳入", "url": "https://example.org/m1",
    "body_html": "<p>生态环境部印发工作方案，将钢铁、水泥、铝冶炼行业纳入全国碳市场，"
                 "覆盖排放量新增约30亿吨。</p>"
                 "<p>纳入行业的重点排放单位将于明年底前完成首次配额清缴，全国碳市场覆盖范围进一步扩大。</p>",
}
WEATHER = {"id": 7, "title": "明后两天有雨",
           "body_html": "<p>受冷空气影响，明后两天我市将有小到中雨，气温下降。</p>"}

POST_PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="UTF-8"><title>站点</title></head>
<body><div class="wrapper"><header><h1><a href="/">金融消息</a></h1></header><section>
<small>(GMT+8, Asia/Shanghai, CST) 2022-03-30 07:10:00</small>
<h1>我省印发适应气候变化行动方案</h1>
<p>省政府办公厅日前印发适应气候变化行动方案，落实《国家适应气候变化战略2035》。</p>
<p>方案提出开展气候风险评估，推进气候适应型城市建设试点，提升城乡适应气候变化能力。</p>
<p><a href="/category/x.html">返回新闻</a>｜<a href="/">返回首页</a></p>
<small>tags: 环境</small></section></div></body></html>"""
OTHER_PAGE = """<html><head><title>页面</title></head><body><div id="nav"><a href="/">首页</a></div>
<h1>气候投融资试点名单公布</h1><p>九部门公布23个气候投融资试点，引导资金投向应对气候变化领域。</p>
<p>试点地方将建立气候投融资项目库，推动金融机构创新气候投融资产品。</p></body></html>"""


def invoke(args, input=None):
    return CliRunner().invoke(cli, args, input=input, catch_exceptions=False)


def lines(*rows):
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def test_classify_reads_stdin_and_writes_one_json_line_per_article():
    result = invoke(["classify"], input=lines(MARKET, WEATHER))
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert len(out) == 2
    assert "全国碳市场" in out[0]  # not \\u-escaped
    first, second = (json.loads(line) for line in out)
    assert first["id"] == "m1" and first["topics"] == ["carbon-market"]
    assert set(first["scores"]) == {"carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
    assert first["scores"]["carbon-market"] >= 8 and first["scores"]["adaptation-2035"] == 0
    assert {"全国碳市场", "重点排放单位", "配额"} <= set(first["evidence"]["carbon-market"])
    assert list(first["excerpt"]) == ["carbon-market"]
    assert first["excerpt"]["carbon-market"].startswith("生态环境部印发工作方案")
    assert second == {"id": "7", "topics": [], "scores": dict.fromkeys(first["scores"], 0.0),
                      "evidence": {topic: [] for topic in first["scores"]}, "excerpt": {}}


def test_classify_reads_a_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(lines(WEATHER, MARKET), encoding="utf-8")
    result = invoke(["classify", str(path)])
    assert [json.loads(line)["topics"] for line in result.output.splitlines()] == [[], ["carbon-market"]]


def test_classify_names_a_bad_line():
    result = CliRunner().invoke(cli, ["classify"], input=lines(MARKET) + '{"id": "x", "title": "t"}\n')
    assert result.exit_code == 1
    assert "<stdin>:2: 'body_html' must be a string" in result.output


def test_classify_uses_the_topics_of_a_given_config(write_config):
    path = write_config("""
        [topics.hydrogen]
        name = "氢能"
        [topics.hydrogen.terms]
        "加氢站" = 4
    """)
    row = {"id": "h", "title": "我市新建加氢站",
           "body_html": "<p>我市今年新建加氢站5座，加氢站总数达到12座。</p>"}
    result = invoke(["--config", str(path), "classify"], input=lines(row))
    assert json.loads(result.output)["topics"] == ["hydrogen"]


def test_eval_prints_metrics_and_confusion(tmp_path):
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text(lines(*CORPUS), encoding="utf-8")
    result = invoke(["eval", "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "5 articles" in result.output
    micro = next(line for line in result.output.splitlines() if line.startswith("micro"))
    assert micro.split() == ["micro", "2", "1", "1", "0.667", "0.667", "0.667"]
    assert "[carbon-market] cm-2  全国碳市场运行平稳" in result.output
    data = json.loads(invoke(["eval", "--corpus", str(corpus), "--json"]).output)
    assert data["topics"]["adaptation-2035"]["f1"] == 1.0 and data["micro"]["fn"] == 1


def test_explain_one_row_of_a_corpus(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(lines(WEATHER, MARKET), encoding="utf-8")
    result = invoke(["explain", str(corpus), "--id", "m1"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("全国碳市场扩容 钢铁水泥铝冶炼纳入\nhttps://example.org/m1\n")
    assert "== carbon-market (碳市场): MATCH, score" in text and "threshold 8" in text
    market_block = text.split("== carbon-market")[1].split("\n== ")[0]
    assert "全国碳市场" in market_block and "title" in market_block and "body" in market_block
    assert "excerpt:\n     生态环境部印发工作方案" in market_block
    assert "== adaptation-2035 (适应气候变化战略2035): no, score 0 < threshold 8" in text
    first = invoke(["explain", str(corpus)]).output  # no --id: the first row
    assert first.startswith("明后两天有雨\n")


def test_explain_json_and_html_files(tmp_path):
    page = tmp_path / "post.html"
    page.write_text(OTHER_PAGE, encoding="utf-8")
    data = json.loads(invoke(["explain", str(page), "--json"]).output)
    assert data["title"] == "气候投融资试点名单公布"
    finance = next(t for t in data["topics"] if t["topic"] == "climate-finance")
    assert finance["matched"] and finance["threshold"] == 6.0
    assert {"term": "气候投融资试点", "where": "title"} in [{k: e[k] for k in ("term", "where")}
                                                        for e in finance["evidence"]]
    single = tmp_path / "one.json"
    single.write_text(json.dumps(MARKET, ensure_ascii=False), encoding="utf-8")
    assert "carbon-market (碳市场): MATCH" in invoke(["explain", str(single)]).output


def test_explain_a_missing_file_or_id_fails_clearly(tmp_path):
    result = CliRunner().invoke(cli, ["explain", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1 and "nope.jsonl: cannot read" in result.output
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(lines(MARKET), encoding="utf-8")
    result = CliRunner().invoke(cli, ["explain", str(corpus), "--id", "zzz"])
    assert result.exit_code == 1 and "no article with id 'zzz'" in result.output


@pytest.fixture
def site(monkeypatch):
    """A loopback web server with a post page of the Jekyll site and an ordinary article page."""
    pages = {"/post.html": POST_PAGE, "/other.html": OTHER_PAGE}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode("utf-8"))

        def log_message(self, *args):
            pass

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_explain_a_url_of_the_jekyll_site_and_of_any_page(site):
    post = invoke(["explain", f"{site}/post.html"])
    assert post.exit_code == 0, post.output
    assert post.output.startswith(f"我省印发适应气候变化行动方案\n{site}/post.html\n")
    assert "== adaptation-2035 (适应气候变化战略2035): MATCH" in post.output
    assert "返回" not in post.output  # the site's navigation is not part of the article
    other = invoke(["explain", f"{site}/other.html"])
    assert other.output.startswith("气候投融资试点名单公布\n")
    assert "== climate-finance (气候投融资试点): MATCH" in other.output
    missing = CliRunner().invoke(cli, ["explain", f"{site}/gone.html"])
    assert missing.exit_code == 1 and f"HTTP 404 Not Found from {site}/gone.html" in missing.output


def test_eval_several_corpora_prints_a_table_each_and_a_summary(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(lines(*CORPUS), encoding="utf-8")
    second.write_text(lines(*CORPUS[:2]), encoding="utf-8")  # cm-1 TP, cm-2 FP
    result = invoke(["eval", "--corpus", str(first), "--corpus", str(second)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"== {first}: 5 articles" in out and f"== {second}: 2 articles" in out
    assert "False positives" not in out  # the misses only with --errors
    summary = {line.split()[0]: line.split()[1:] for line in out.split("corpus ")[-1].splitlines()[1:]}
    # b: carbon-market 1 TP, 1 FP; nothing else predicted or labelled.
    assert summary[str(second)][:3] == ["0.500", "1.000", "0.667"]
    # all: a's 2/1/1 plus b's 1/1/0 = 3 TP, 2 FP, 1 FN.
    assert summary["all"][:3] == ["0.600", "0.750", "0.667"]
    detailed = invoke(["eval", "--corpus", str(first), "--corpus", str(second), "--errors"]).output
    assert detailed.count("[carbon-market] cm-2  全国碳市场运行平稳") == 2
    assert "= strength" in detailed and "in the whole article" in detailed
    data = json.loads(invoke(["eval", "--corpus", str(first), "--corpus", str(second), "--json"]).output)
    assert [c["corpus"] for c in data["corpora"]] == [str(first), str(second)]
    assert (data["all"]["micro"]["tp"], data["all"]["micro"]["fp"], data["all"]["micro"]["fn"]) == (3, 2, 1)
