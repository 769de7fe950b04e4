-- One number that moves with every change to tiers, rates or tier overrides, so each
-- worker's pricing cache can ask "anything new?" with a one-row read. Bumped by
-- statement triggers in the writer's own transaction: readers see the new version
-- exactly when they can see the new rows (a sequence would move before the commit).
CREATE TABLE "pricing_versions" (
    "id" SMALLINT NOT NULL DEFAULT 1,
    "version" BIGINT NOT NULL DEFAULT 1,

    CONSTRAINT "pricing_versions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "pricing_versions_single_row" CHECK ("id" = 1)
);

INSERT INTO "pricing_versions" ("id", "version") VALUES (1, 1);

CREATE FUNCTION "pricing_version_bump"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "pricing_versions" SET "version" = "version" + 1 WHERE "id" = 1;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "pricing_tiers_bump_version"
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "pricing_tiers"
  FOR EACH STATEMENT EXECUTE FUNCTION "pricing_version_bump"();
CREATE TRIGGER "pricing_rates_bump_version"
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "pricing_rates"
  FOR EACH STATEMENT EXECUTE FUNCTION "pricing_version_bump"();
CREATE TRIGGER "tier_overrides_bump_version"
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "tier_overrides"
  FOR EACH STATEMENT EXECUTE FUNCTION "pricing_version_bump"();
