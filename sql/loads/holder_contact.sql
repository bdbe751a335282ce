-- A holder's statement contact (tributary contacts add); adding the same address again is a no-op.
INSERT OR IGNORE INTO ref.holder_contacts VALUES ($rights_holder_id, $email, $name, $now);
