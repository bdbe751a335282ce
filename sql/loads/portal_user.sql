INSERT INTO portal.users (user_id, rights_holder_id, display_name, created_by, created_at)
VALUES ($user_id, $rights_holder_id, $display_name, $by, $now);
