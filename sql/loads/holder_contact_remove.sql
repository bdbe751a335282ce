-- Stop sending a holder's statements to an address (mails already sent stay recorded).
DELETE FROM ref.holder_contacts WHERE rights_holder_id = $rights_holder_id AND email = $email;
