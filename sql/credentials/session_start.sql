INSERT INTO sessions VALUES ($session_id, $user_id, $client, $now, NULL);
