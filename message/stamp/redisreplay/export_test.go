package redisreplay

// Key is the key that records the stamp jti of source, for tests to look
// at in Redis.
func (s *Store) Key(source, jti string) string { return s.key(source, jti) }
