-- The db tests' fixture data (tests/unit/db/test_postgresql.cpp), run by
-- tests/net/postgres_server.py --init.
CREATE TABLE items (
  id serial PRIMARY KEY,
  name text NOT NULL,
  price numeric(10, 2),
  in_stock boolean NOT NULL DEFAULT true
);
INSERT INTO items (name, price, in_stock) VALUES
  ('apple', 1.25, true),
  ('pear', 2.50, false),
  ('plum', NULL, true);
