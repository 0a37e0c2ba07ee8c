<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed opened in a browser as a readable page; readers ignore it. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:template match="/">
    <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
    <xsl:variable name="about" select="/rss/channel/description | /atom:feed/atom:subtitle"/>
    <xsl:variable name="home" select="/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href"/>
    <html lang="zh-CN">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/></title>
        <style>
          body { font-family: system-ui, -apple-system, "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC",
                 "Microsoft YaHei", sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
                 color: #1f2933; line-height: 1.6; background: #fafaf7; }
          .note { background: #e8f3ec; border-left: 4px solid #2f7d4f; padding: .6rem 1rem; border-radius: 4px; }
          h1 { font-size: 1.6rem; margin-bottom: .2rem; }
          li { margin: 1rem 0; list-style: none; }
          ul { padding: 0; }
          a { color: #1d5fa8; }
          time, .meta { color: #667; font-size: .85rem; }
          p.summary { margin: .2rem 0 0; }
        </style>
      </head>
      <body>
        <p class="note">这是一个订阅源（RSS/Atom）。把本页地址复制到阅读器（如 NetNewsWire、Miniflux、FreshRSS、newsboat）即可订阅。</p>
        <h1><xsl:value-of select="$title"/></h1>
        <p><xsl:value-of select="$about"/></p>
        <p class="meta"><a href="{$home}">返回全部频道</a></p>
        <ul>
          <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
        </ul>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <a href="{link}"><xsl:value-of select="title"/></a>
      <div class="meta"><xsl:value-of select="pubDate"/></div>
      <p class="summary"><xsl:value-of select="description"/></p>
    </li>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li>
      <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a>
      <div class="meta"><xsl:value-of select="atom:published"/></div>
      <p class="summary"><xsl:value-of select="atom:summary"/></p>
    </li>
  </xsl:template>
</xsl:stylesheet>
