INSERT INTO portal.access_log (accessed_at, user_id, rights_holder_id, client, action, path, subject, status)
VALUES ($now, $user_id, $rights_holder_id, $client, $action, $path, $subject, $status);
