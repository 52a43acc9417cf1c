package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// errHashKind is the message of every refused kind of hash; the error
// that wraps it says which kind was found.
const errHashKind = "only bcrypt and SHA-256 crypt hashes are accepted"

// htpasswdEntry checks one "user:hash" line of basic_auth and returns the
// user. Only bcrypt ($2a$, $2b$, $2y$) and SHA-256 crypt ($5$) hashes are
// accepted. Messages never quote the hash, which may be a plain-text
// password.
func htpasswdEntry(line string) (string, error) {
	user, hash, ok := strings.Cut(line, ":")
	switch {
	case !ok:
		return "", errors.New(`an entry is "user:hash", as htpasswd -nB USER prints it`)
	case user == "":
		return "", errors.New("the user name is empty")
	case strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", errors.New("the user name holds a control character")
	}
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if err := checkBcrypt(hash); err != nil {
			return user, fmt.Errorf("user %q: the bcrypt hash does not parse: %v", user, err)
		}
	case strings.HasPrefix(hash, "$5$"):
		if err := checkSHA256Crypt(hash); err != nil {
			return user, fmt.Errorf("user %q: the SHA-256 crypt hash does not parse: %v", user, err)
		}
	default:
		return user, fmt.Errorf("user %q: %s, not %s; make one with htpasswd -nB %s", user, errHashKind, hashKind(hash), user)
	}
	return user, nil
}

// hashKind names a refused hash by its prefix.
func hashKind(h string) string {
	for _, k := range []struct{ prefix, name string }{
		{"$apr1$", "an Apache MD5 ($apr1$) hash"},
		{"$1$", "an MD5 crypt ($1$) hash"},
		{"$6$", "a SHA-512 crypt ($6$) hash"},
		{"$2", "a bcrypt hash of an unknown version"},
		{"{SHA}", "a SHA-1 ({SHA}) hash"},
		{"$", "an unknown hash"},
	} {
		if strings.HasPrefix(h, k.prefix) {
			return k.name
		}
	}
	return "plain text or a DES crypt hash"
}

// checkBcrypt checks that h parses as a bcrypt hash: 60 characters,
// "$2x$NN$" then 53 characters of bcrypt's base64.
func checkBcrypt(h string) error {
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return errors.New(sentence(strings.TrimPrefix(err.Error(), "crypto/bcrypt: ")))
	}
	if len(h) != 60 {
		return fmt.Errorf("a bcrypt hash is 60 characters long, this one %d", len(h))
	}
	if !cryptBase64(h[7:]) {
		return errors.New("salt and hash hold a character other than ./0-9A-Za-z")
	}
	return nil
}

// checkSHA256Crypt checks "$5$[rounds=N$]salt$hash" (the SHA-crypt
// specification): a salt of 1 to 16 characters and a 43-character hash,
// both of ./0-9A-Za-z.
func checkSHA256Crypt(h string) error {
	rest := strings.TrimPrefix(h, "$5$")
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, ok := strings.Cut(r, "$")
		rounds, err := strconv.Atoi(n)
		if !ok || err != nil || rounds < 1000 || rounds > 999999999 {
			return errors.New("rounds must be a number between 1000 and 999999999")
		}
		rest = after
	}
	salt, sum, ok := strings.Cut(rest, "$")
	switch {
	case !ok:
		return errors.New(`missing the "$" between salt and hash`)
	case len(salt) < 1 || len(salt) > 16 || !cryptBase64(salt):
		return errors.New("the salt must be 1 to 16 characters of ./0-9A-Za-z")
	case len(sum) != 43 || !cryptBase64(sum):
		return errors.New("the hash must be 43 characters of ./0-9A-Za-z")
	}
	return nil
}

// cryptBase64 reports whether s uses only the crypt alphabet.
func cryptBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// usersFile checks a basic_auth users_file: htpasswd lines, blank lines
// and # comments. It returns the entries; errors name the line.
func usersFile(b []byte) (entries, users []string, lines []int, errs []error) {
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		u, err := htpasswdEntry(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		entries, users, lines = append(entries, l), append(users, u), append(lines, i+1)
	}
	return entries, users, lines, errs
}

// checkUsersFiles reads the users_file of every basic_auth middleware,
// checks its lines and merges them into BasicAuth.Users after the users
// list, so the runtime never reads the file. A user already listed is an
// error.
func checkUsersFiles(c *decls, src sources, errf func(Pos, string, ...any)) {
	for _, m := range c.middlewares {
		ba := m.BasicAuth
		if ba == nil || !m.w.ok("users_file") || ba.UsersFile == "" || m.w.has("users") && !m.w.ok("users") {
			continue
		}
		ctx := fmt.Sprintf("middleware %q: basic_auth", m.Name)
		at := m.w.pos["users_file"]
		b, err := readPEMFile(src, ba.UsersFile)
		if err != nil {
			errf(at, "%s: users_file %q: %s", ctx, ba.UsersFile, err)
			continue
		}
		entries, users, lines, errs := usersFile(b)
		for _, err := range errs {
			errf(at, "%s: users_file %q %v", ctx, ba.UsersFile, err)
		}
		seen := map[string]string{}
		for i, e := range ba.Users {
			u, _, _ := strings.Cut(e, ":")
			seen[u] = fmt.Sprintf("users[%d] (%s)", i, m.w.at(fmt.Sprintf("users.%d", i), m.w.pos["users"]))
		}
		for i, u := range users {
			if prev, dup := seen[u]; dup {
				errf(at, "%s: users_file %q line %d: user %q is listed twice; first in %s", ctx, ba.UsersFile, lines[i], u, prev)
				continue
			}
			seen[u] = fmt.Sprintf("line %d", lines[i])
			ba.Users = append(ba.Users, entries[i])
		}
		if len(errs) == 0 && len(ba.Users) == 0 {
			errf(at, "%s: users_file %q holds no user; add lines made by htpasswd -nB USER", ctx, ba.UsersFile)
		}
	}
}
