-- The schema at version 12, as the migrations build it (python -m feedbot.store.schema).
CREATE TABLE "sources" (
   "id" TEXT PRIMARY KEY,
   "kind" TEXT NOT NULL,
   "url" TEXT NOT NULL,
   "etag" TEXT,
   "last_modified" TEXT,
   "last_checked_at" TEXT,
   "last_ok_at" TEXT,
   "next_check_at" TEXT,
   "failures" INTEGER DEFAULT 0,
   "last_error" TEXT
);
CREATE TABLE "pages" (
   "url" TEXT PRIMARY KEY,
   "source_id" TEXT,
   "etag" TEXT,
   "last_modified" TEXT,
   "content_hash" TEXT,
   "fetched_at" TEXT
);
CREATE TABLE "articles" (
   "id" INTEGER PRIMARY KEY,
   "source_id" TEXT NOT NULL,
   "key" TEXT NOT NULL,
   "url" TEXT,
   "title" TEXT NOT NULL,
   "published_at" TEXT,
   "updated_at" TEXT,
   "first_seen_at" TEXT NOT NULL,
   "body_html" TEXT,
   "text" TEXT,
   "content_hash" TEXT NOT NULL,
   "outlet" TEXT,
   "origin_url" TEXT
);
CREATE UNIQUE INDEX "idx_articles_source_id_key"
    ON "articles" ("source_id", "key");
CREATE INDEX "idx_articles_published_at"
    ON "articles" ("published_at");
CREATE TABLE "classifications" (
   "article_id" INTEGER REFERENCES "articles"("id"),
   "topic" TEXT,
   "score" REAL,
   "evidence" TEXT,
   "excerpt" TEXT,
   PRIMARY KEY ("article_id", "topic")
);
CREATE INDEX "idx_classifications_topic"
    ON "classifications" ("topic");
CREATE TABLE "deliveries" (
   "id" INTEGER PRIMARY KEY,
   "article_id" INTEGER NOT NULL REFERENCES "articles"("id"),
   "topic" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "status" TEXT NOT NULL DEFAULT 'pending',
   "attempts" INTEGER DEFAULT 0,
   "next_attempt_at" TEXT,
   "message_id" INTEGER,
   "last_error" TEXT,
   "content_hash" TEXT,
   "created_at" TEXT NOT NULL,
   "sent_at" TEXT
, claimed_by INTEGER);
CREATE UNIQUE INDEX "idx_deliveries_article_id_target"
    ON "deliveries" ("article_id", "target");
CREATE INDEX "idx_deliveries_target_status"
    ON "deliveries" ("target", "status");
CREATE TABLE "targets" (
   "target" TEXT PRIMARY KEY,
   "status" TEXT,
   "first_seen_at" TEXT,
   "retry_at" TEXT,
   "last_error" TEXT
, healthy_at TEXT, chat_id TEXT);
CREATE TABLE "meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
CREATE INDEX idx_articles_newest ON articles (COALESCE(published_at, first_seen_at), id);
CREATE TABLE "post_retries" (
   "source_id" TEXT,
   "key" TEXT,
   "url" TEXT NOT NULL,
   "error" TEXT,
   "failures" INTEGER DEFAULT 0,
   "first_failed_at" TEXT,
   "last_failed_at" TEXT,
   PRIMARY KEY ("source_id", "key")
);
CREATE VIRTUAL TABLE articles_fts USING fts5(title, text, content='articles', content_rowid='id', tokenize='trigram');
CREATE INDEX idx_articles_first_seen ON articles (first_seen_at);
CREATE INDEX idx_articles_updated ON articles (updated_at);
CREATE TABLE "quarantine" (
   "source_id" TEXT,
   "key" TEXT,
   "url" TEXT,
   "reason" TEXT NOT NULL,
   "stage" TEXT,
   "first_seen_at" TEXT NOT NULL,
   "last_seen_at" TEXT NOT NULL,
   "count" INTEGER NOT NULL,
   "retry_at" TEXT,
   PRIMARY KEY ("source_id", "key")
);
CREATE TABLE "digests" (
   "id" INTEGER PRIMARY KEY,
   "target" TEXT NOT NULL,
   "topic" TEXT NOT NULL,
   "period" TEXT NOT NULL,
   "period_start" TEXT,
   "period_end" TEXT,
   "status" TEXT NOT NULL,
   "articles" INTEGER,
   "note" TEXT,
   "created_at" TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_digests_period ON digests (target, period);
CREATE TABLE "digest_parts" (
   "id" INTEGER PRIMARY KEY,
   "digest_id" INTEGER NOT NULL REFERENCES "digests"("id"),
   "part" INTEGER NOT NULL,
   "html" TEXT NOT NULL,
   "plain" TEXT NOT NULL,
   "status" TEXT NOT NULL,
   "attempts" INTEGER DEFAULT 0,
   "claimed_by" INTEGER,
   "message_id" INTEGER,
   "next_attempt_at" TEXT,
   "last_error" TEXT,
   "sent_at" TEXT
);
CREATE UNIQUE INDEX idx_digest_parts ON digest_parts (digest_id, part);
CREATE TABLE "signatures" (
   "article_id" INTEGER PRIMARY KEY REFERENCES "articles"("id"),
   "source_id" TEXT NOT NULL,
   "signature" BLOB,
   "original_id" INTEGER,
   "first_seen_at" TEXT NOT NULL
);
CREATE INDEX idx_signatures_seen ON signatures (first_seen_at);
CREATE INDEX idx_signatures_original ON signatures (original_id);
CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
CREATE TRIGGER articles_insert_counted AFTER INSERT ON articles BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TRIGGER articles_update_counted AFTER UPDATE ON articles BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TRIGGER articles_delete_counted AFTER DELETE ON articles BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TRIGGER classifications_insert_counted AFTER INSERT ON classifications BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TRIGGER classifications_update_counted AFTER UPDATE ON classifications BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TRIGGER classifications_delete_counted AFTER DELETE ON classifications BEGIN UPDATE change_counter SET value = value + 1; END;
CREATE TABLE search_queue (article_id INTEGER PRIMARY KEY);
CREATE TRIGGER articles_search_insert AFTER INSERT ON articles BEGIN INSERT OR IGNORE INTO search_queue(article_id) VALUES (new.id); END;
CREATE TRIGGER articles_search_update AFTER UPDATE OF title, text ON articles BEGIN INSERT INTO articles_fts(articles_fts, rowid, title, text) SELECT 'delete', old.id, old.title, old.text WHERE NOT EXISTS (SELECT 1 FROM search_queue WHERE article_id = old.id); INSERT OR IGNORE INTO search_queue(article_id) VALUES (new.id); END;
CREATE TRIGGER articles_search_delete AFTER DELETE ON articles BEGIN INSERT INTO articles_fts(articles_fts, rowid, title, text) SELECT 'delete', old.id, old.title, old.text WHERE NOT EXISTS (SELECT 1 FROM search_queue WHERE article_id = old.id); DELETE FROM search_queue WHERE article_id = old.id; END;
INSERT INTO "change_counter" (id, value) VALUES (1, 0);
