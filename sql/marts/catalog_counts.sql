SELECT (SELECT count(*) FROM ref.works) AS works,
       (SELECT count(*) FROM ref.rights_holders) AS rights_holders,
       (SELECT count(*) FROM ref.splits) AS splits;
