-- Rights holder ids already in the catalog.
SELECT rights_holder_id FROM ref.rights_holders;
