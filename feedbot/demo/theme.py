"""The Jekyll theme chrome (jekyll-theme-minimal) around every page of the sample site."""

from __future__ import annotations

import html


def page_head(title: str) -> str:
    """The jekyll-theme-minimal page up to the content, as the real site serves it."""
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="X-UA-Compatible" content="IE=edge">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta content="ZNing" name="author" />
    <meta property="og:type" content="website" />
    <meta property="og:title" content="{html.escape(title)}">
<!-- Begin Jekyll SEO tag v2.8.0 -->
<title>{html.escape(title, quote=False)} | 金融消息</title>
<meta name="generator" content="Jekyll v3.9.3" />
<link rel="canonical" href="https://finews.withounder.com/" />
<!-- End Jekyll SEO tag -->
    <link rel="stylesheet" href="/assets/css/style.css?v=0">
    <script type="text/JavaScript">
      function AutoRefresh( t ) {{ setTimeout("location.reload(true);", t); }}
    </script>
  </head>
  <body onload="JavaScript:AutoRefresh(60000);">
    <div class="wrapper">
      <header>
        <h1><a href="https://finews.withounder.com/">金融消息</a></h1>
        <p></p>
      </header>
      <section>

      """


PAGE_FOOT = """
      </section>
      <footer>
        <p>&copy; 2021</p>
      </footer>
    </div>
    <script src="/assets/js/scale.fix.js"></script>
  </body>
</html>
"""
