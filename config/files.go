package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// checkFiles proves that the certificate, key and CA files named in c load,
// and warns about an expired certificate. It is the pipeline step after
// validation that reads files other than the configuration and those of
// file(), and the one that reads the clock. What it parses is dropped: a
// Config holds paths, and the runtime loads the files itself (and again
// when they change). The exception is a basic_auth users_file: its lines
// are checked and merged into BasicAuth.Users, so the runtime never reads
// it. Values that already failed are skipped.
func checkFiles(c *decls, src sources) Diagnostics {
	now := time.Now
	if src.now != nil {
		now = src.now
	}
	var ds Diagnostics
	errf := func(p Pos, format string, args ...any) {
		ds = append(ds, Diagnostic{Severity: SeverityError, Pos: p, Message: fmt.Sprintf(format, args...)})
	}
	// read reads the file of attribute name, recorded in w under key.
	read := func(ctx string, w where, key, name, path string) ([]byte, bool) {
		if !w.ok(key) || path == "" {
			return nil, false
		}
		b, err := readPEMFile(src, path)
		if err != nil {
			errf(w.pos[key], "%s: %s %q: %s", ctx, name, path, err)
			return nil, false
		}
		return b, true
	}
	for _, cd := range c.tls.certs {
		ctx := fmt.Sprintf("tls: certificate %q", cd.Name)
		certPEM, okCert := read(ctx, cd.w, "cert_file", "cert_file", cd.CertFile)
		keyPEM, okKey := read(ctx, cd.w, "key_file", "key_file", cd.KeyFile)
		if !okCert || !okKey {
			continue
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			errf(cd.w.pos["cert_file"], "%s: cert_file %q and key_file %q do not load as a pair: %s", ctx, cd.CertFile, cd.KeyFile, sentence(err.Error()))
			continue
		}
		if leaf := pair.Leaf; leaf != nil && leaf.NotAfter.Before(now()) {
			ds = append(ds, Diagnostic{
				Severity: SeverityWarning,
				Pos:      cd.w.pos["cert_file"],
				Message: fmt.Sprintf("%s: cert_file %q expired on %s; clients will refuse it until it is renewed",
					ctx, cd.CertFile, leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST")),
			})
		}
	}
	for _, s := range c.services {
		if s.TLS == nil {
			continue
		}
		ctx := fmt.Sprintf("service %q: tls", s.Name)
		b, ok := read(ctx, s.w, "tls.ca_file", "ca_file", s.TLS.CAFile)
		if ok && !x509.NewCertPool().AppendCertsFromPEM(b) {
			errf(s.w.pos["tls.ca_file"], "%s: ca_file %q holds no PEM certificate", ctx, s.TLS.CAFile)
		}
	}
	for _, a := range c.tls.acme {
		ctx := fmt.Sprintf("tls: acme %q", a.Name)
		b, ok := read(ctx, a.w, "ca_file", "ca_file", a.CAFile)
		if ok && !x509.NewCertPool().AppendCertsFromPEM(b) {
			errf(a.w.pos["ca_file"], "%s: ca_file %q holds no PEM certificate", ctx, a.CAFile)
		}
	}
	checkUsersFiles(c, src, errf)
	return ds
}

// readPEMFile reads a certificate, key, CA or users file: a regular file
// of at most maxFileFuncSize bytes.
func readPEMFile(src sources, path string) ([]byte, error) {
	b, err := src.readFile(path)
	if err != nil {
		var pe *os.PathError
		switch {
		case errors.Is(err, errNotRegular):
			return nil, errNotRegular
		case errors.As(err, &pe):
			// The path is already in the message; do not say it twice.
			return nil, fmt.Errorf("cannot %s: %w", pe.Op, pe.Err)
		default:
			return nil, err
		}
	}
	if len(b) > maxFileFuncSize {
		return nil, fmt.Errorf("file is larger than %d bytes", maxFileFuncSize)
	}
	return b, nil
}
