DROP TABLE mfa_authenticators;
