-- Where the client was, from the user's .mmdb file (--geoip), looked up before the address was reduced.
ALTER TABLE events ADD COLUMN country TEXT;
ALTER TABLE events ADD COLUMN region  TEXT;
