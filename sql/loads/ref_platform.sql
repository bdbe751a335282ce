INSERT OR IGNORE INTO ref.platforms (platform_id, name, conn_id) VALUES ($platform_id, $name, $conn_id);
