package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/carbondesk/carbondesk/internal/auth"
)

func newTokenCmd() *cobra.Command {
	var (
		dataDir  string
		role     string
		org      string
		subject  string
		ttl      time.Duration
		keyFile  string
		issuer   string
		audience string
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a bearer token that a carbondesk on the same data folder accepts",
		Long: `Prints a signed bearer token (a JWT) for a role and organisation.

By default it signs with the development key in the data folder (created there
on first use), which a carbondesk started with the same --data accepts. With
--key it signs with an operator's Ed25519 private key (PKCS#8 PEM) instead.

  grpcurl -H "authorization: Bearer $(carbondesk token --role staff)" ...`,
		Example: `  carbondesk token --role staff
  carbondesk token --role institution --org 91420106MA4K00010G --ttl 8h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				r   = auth.Role(role)
				err error
				iss = auth.Issuer{Issuer: issuer, Audience: audience}
			)
			if !r.Valid() {
				return fmt.Errorf("--role %q: want staff, institution or enterprise", role)
			}
			if r != auth.Staff && org == "" {
				return fmt.Errorf("--org is required for --role %s: the organisation's unified social credit code", role)
			}
			if keyFile != "" {
				iss.Key, err = auth.LoadPrivateKey(keyFile)
			} else {
				iss.Key, _, err = auth.LoadOrCreateDevKey(dataDir)
			}
			if err != nil {
				return err
			}
			if subject == "" {
				subject = "dev-" + role
				if org != "" {
					subject += "-" + org
				}
			}
			tok, err := iss.Mint(auth.Caller{Subject: subject, Role: r, Org: org}, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "data", "data folder whose development key signs the token")
	f.StringVar(&role, "role", "", "staff, institution or enterprise (required)")
	f.StringVar(&org, "org", "", "organisation: its unified social credit code (required for institution and enterprise)")
	f.StringVar(&subject, "sub", "", "subject: who the token is for (default dev-<role>[-<org>])")
	f.DurationVar(&ttl, "ttl", 12*time.Hour, "how long the token is valid (at most 720h)")
	f.StringVar(&keyFile, "key", "", "sign with this Ed25519 private key (PKCS#8 PEM) instead of the development key")
	f.StringVar(&issuer, "issuer", auth.DefaultIssuer, "iss claim")
	f.StringVar(&audience, "audience", auth.DefaultAudience, "aud claim")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}
