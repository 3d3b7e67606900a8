-- The example's leads: the caller's number (the user part of the From URI), a name and a
-- score from 0 to 100 that the Python routing function turns into a queue.
CREATE TABLE leads (
  phone TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  score INTEGER NOT NULL
);
INSERT INTO leads (phone, name, score) VALUES
  ('5551234', 'Alice', 91),
  ('5550000', 'Bob', 64),
  ('5559999', 'Carol', 12);
