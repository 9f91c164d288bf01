-- Where each linked object comes from (issue 17): SHA-256 of the storage's configuration but
-- its prefix, of how the object is read (blob or task file) and of its URI (`sync::import::source`). A storage does not import
-- again what another storage of the same project already linked (the same bucket connected
-- twice), so tasks stay unique per project and object. NULL for links made before this
-- migration, which no URI can be recomputed for in SQL.
ALTER TABLE import_links ADD COLUMN source BLOB;
CREATE INDEX import_links_source ON import_links(source, row_index) WHERE source IS NOT NULL;
