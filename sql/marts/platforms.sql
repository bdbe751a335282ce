SELECT platform_id, name, conn_id FROM ref.platforms ORDER BY platform_id;
