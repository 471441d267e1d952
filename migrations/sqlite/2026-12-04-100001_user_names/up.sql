-- Django's auth_user.first_name and last_name, kept for users imported from
-- django-allauth (`allauth-server import django`); empty for the others.
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
