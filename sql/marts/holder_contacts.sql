-- Statement contacts, every holder or one ($rights_holder_id NULL: all).
SELECT rights_holder_id, email, name, added_at
FROM ref.holder_contacts
WHERE $rights_holder_id IS NULL OR rights_holder_id = $rights_holder_id
ORDER BY rights_holder_id, email;
