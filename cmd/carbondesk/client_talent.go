package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
)

func eventsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("events", "Create, publish and run talent events: trainings, salons, exams (talent base)", c)
	cmd.AddCommand(eventsList(c), eventsGet(c), eventsCreate(c), eventsPublish(c), eventsCancel(c), eventsRegister(c), eventsCheckin(c))
	return cmd
}

func eventsList(c *conn) *cobra.Command {
	var (
		req           = &talentv1.ListEventsRequest{}
		after, before string
	)
	cmd := &cobra.Command{Use: "list", Short: "List events", Args: cobra.NoArgs}
	cmd.RunE = c.run("list events", true, func(s *session, _ []string) error {
		var err error
		if req.StartAfter, err = when(after); err != nil {
			return fmt.Errorf("--after: %w", err)
		}
		if req.StartBefore, err = when(before); err != nil {
			return fmt.Errorf("--before: %w", err)
		}
		resp, err := s.talent().ListEvents(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("ID", "START", "TITLE", "HOST", "KIND", "SEATS", "STATE")
			for _, e := range resp.GetEvents() {
				t.Row(e.GetId(), showTime(e.GetStartTime()), cli.Truncate(e.GetTitleZh(), 36), hostName(e), key(e.GetKind()),
					fmt.Sprintf("%d/%d", e.GetSeats().GetTaken(), e.GetCapacity()), key(e.GetState()))
			}
			return t
		})
	})
	pagingFlags(cmd, &req.PageSize, &req.PageToken)
	f := cmd.Flags()
	f.StringVar(&req.HostInstitutionId, "host", "", "only hosted by this institution (its ID)")
	f.BoolVar(&req.DistrictHosted, "district", false, "only hosted by the district")
	enumVar(cmd, &req.Kind, "kind", "only of this kind")
	enumVar(cmd, &req.State, "state", "only in this state")
	enumVar(cmd, &req.Category, "category", "only on this product category")
	enumVar(cmd, &req.Sector, "sector", "only on this sector")
	enumVar(cmd, &req.JobType, "job-type", "only for this job type")
	f.StringVar(&after, "after", "", "only starting after this time (RFC 3339, date, or duration from now)")
	f.StringVar(&before, "before", "", "only starting before this time")
	f.StringVar(&req.TitleContains, "title", "", "only those whose title contains this")
	f.BoolVar(&req.NeedsAttention, "needs-attention", false, "only those staff should look at")
	return cmd
}

func hostName(e *talentv1.Event) string {
	if e.GetHostName() != "" {
		return e.GetHostName()
	}
	if e.GetHostInstitutionId() == "" {
		return "district"
	}
	return e.GetHostInstitutionId()
}

func eventsGet(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "get ID", Short: "Show one event", Args: oneArg("ID")}
	cmd.RunE = c.run("get event", true, func(s *session, args []string) error {
		resp, err := s.talent().GetEvent(s.ctx, &talentv1.GetEventRequest{Id: args[0]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return eventTable(resp.GetEvent()) })
	})
	return cmd
}

func eventTable(e *talentv1.Event) *cli.Table {
	t := cli.NewTable("FIELD", "VALUE")
	t.Row("id", e.GetId())
	t.Row("title", e.GetTitleZh())
	t.Row("title (en)", e.GetTitleEn())
	t.Row("host", hostName(e))
	t.Row("kind", key(e.GetKind()))
	t.Row("start", showTime(e.GetStartTime()))
	t.Row("end", showTime(e.GetEndTime()))
	t.Row("registration deadline", showTime(e.GetRegistrationDeadline()))
	t.Row("venue", e.GetVenue())
	t.Row("zone", key(e.GetZone()))
	t.Row("seats", fmt.Sprintf("%d taken of %d, %d waitlisted", e.GetSeats().GetTaken(), e.GetCapacity(), e.GetSeats().GetWaitlisted()))
	t.Row("training hours", e.GetTrainingHours())
	t.Row("state", strings.TrimSpace(key(e.GetState())+" "+e.GetStateReason()))
	t.Row("version", e.GetVersion())
	return t
}

func eventsCreate(c *conn) *cobra.Command {
	var (
		file                 string
		flag                 = &talentv1.Event{Topics: &talentv1.Topics{}}
		start, end, deadline string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a draft event (staff for the district or any active institution; an institution for itself)",
		Example: `  carbondesk events create --title-zh 碳资产质押融资实务沙龙 --kind salon --start 2026-06-01T14:00:00+08:00 \
    --end 2026-06-01T17:00:00+08:00 --venue "武昌区中北路 86 号" --zone finance_axis --capacity 40`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = c.run("create event", true, func(s *session, _ []string) error {
		req := &talentv1.CreateEventRequest{}
		if err := readRequest(file, req); err != nil {
			return err
		}
		if req.Event == nil {
			req.Event = &talentv1.Event{}
		}
		e, f := req.Event, s.cmd.Flags()
		if e.Topics == nil {
			e.Topics = &talentv1.Topics{}
		}
		for name, apply := range map[string]func(){
			"host":           func() { e.HostInstitutionId = flag.HostInstitutionId },
			"title-zh":       func() { e.TitleZh = flag.TitleZh },
			"title-en":       func() { e.TitleEn = flag.TitleEn },
			"kind":           func() { e.Kind = flag.Kind },
			"description":    func() { e.Description = flag.Description },
			"venue":          func() { e.Venue = flag.Venue },
			"zone":           func() { e.Zone = flag.Zone },
			"capacity":       func() { e.Capacity = flag.Capacity },
			"training-hours": func() { e.TrainingHours = flag.TrainingHours },
			"category":       func() { e.Topics.Categories = flag.Topics.Categories },
			"sector":         func() { e.Topics.Sectors = flag.Topics.Sectors },
			"job-type":       func() { e.Topics.JobTypes = flag.Topics.JobTypes },
		} {
			if f.Changed(name) {
				apply()
			}
		}
		for _, tf := range []struct {
			name, val string
			set       func(*talentv1.Event, string) error
		}{
			{"start", start, func(e *talentv1.Event, v string) (err error) { e.StartTime, err = when(v); return }},
			{"end", end, func(e *talentv1.Event, v string) (err error) { e.EndTime, err = when(v); return }},
			{"deadline", deadline, func(e *talentv1.Event, v string) (err error) { e.RegistrationDeadline, err = when(v); return }},
		} {
			if f.Changed(tf.name) {
				if err := tf.set(e, tf.val); err != nil {
					return fmt.Errorf("--%s: %w", tf.name, err)
				}
			}
		}
		resp, err := s.talent().CreateEvent(s.ctx, req)
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return eventTable(resp.GetEvent()) })
	})
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "CreateEventRequest as protojson; flags given override its fields")
	fl.StringVar(&flag.HostInstitutionId, "host", "", "ID of the hosting institution (none: the district)")
	fl.StringVar(&flag.TitleZh, "title-zh", "", "title in Chinese")
	fl.StringVar(&flag.TitleEn, "title-en", "", "title in English")
	enumVar(cmd, &flag.Kind, "kind", "kind")
	fl.StringVar(&flag.Description, "description", "", "description")
	fl.StringVar(&start, "start", "", "start: RFC 3339, or a duration from now")
	fl.StringVar(&end, "end", "", "end: RFC 3339, or a duration from now")
	fl.StringVar(&deadline, "deadline", "", "registration deadline: RFC 3339, or a duration from now")
	fl.StringVar(&flag.Venue, "venue", "", "venue")
	enumVar(cmd, &flag.Zone, "zone", "zone of the venue")
	fl.Int32Var(&flag.Capacity, "capacity", 0, "seats")
	fl.Int32Var(&flag.TrainingHours, "training-hours", 0, "hours credited to each attendee")
	enumsVar(cmd, &flag.Topics.Categories, "category", "product categories it covers")
	enumsVar(cmd, &flag.Topics.Sectors, "sector", "sectors it covers")
	enumsVar(cmd, &flag.Topics.JobTypes, "job-type", "job types it trains for")
	return cmd
}

func eventsPublish(c *conn) *cobra.Command {
	var version int64
	cmd := &cobra.Command{Use: "publish ID", Short: "Publish a draft event: registration opens", Args: oneArg("ID")}
	cmd.RunE = c.run("publish event", true, func(s *session, args []string) error {
		resp, err := s.talent().PublishEvent(s.ctx, &talentv1.PublishEventRequest{Id: args[0], Version: version})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return eventTable(resp.GetEvent()) })
	})
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the event is at this version (0: any)")
	return cmd
}

func eventsCancel(c *conn) *cobra.Command {
	var (
		reason  string
		version int64
	)
	cmd := &cobra.Command{Use: "cancel ID", Short: "Cancel an event and its registrations", Args: oneArg("ID")}
	cmd.RunE = c.run("cancel event", true, func(s *session, args []string) error {
		resp, err := s.talent().CancelEvent(s.ctx, &talentv1.CancelEventRequest{Id: args[0], Version: version, Reason: reason})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table {
			t := eventTable(resp.GetEvent())
			t.Row("registrations cancelled", resp.GetRegistrationsCancelled())
			return t
		})
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the event is at this version (0: any)")
	return cmd
}

func registrationTable(r *talentv1.Registration) *cli.Table {
	t := cli.NewTable("ID", "EVENT", "ATTENDEE", "ORGANIZATION", "POSITION", "STATE")
	t.Row(r.GetId(), r.GetEventId(), r.GetAttendee().GetName(), r.GetAttendee().GetOrganization(), r.GetPosition(), key(r.GetState()))
	return t
}

func eventsRegister(c *conn) *cobra.Command {
	a := &talentv1.Attendee{}
	cmd := &cobra.Command{
		Use:     "register EVENT_ID",
		Short:   "Register a person for an event (waitlisted when it is full)",
		Example: `  carbondesk events register 01J... --name 周雨桐 --organization 楚江碳金融银行武昌分行 --role 客户经理 --phone "139 0271 0001"`,
		Args:    oneArg("EVENT_ID"),
	}
	cmd.RunE = c.run("register for event", true, func(s *session, args []string) error {
		resp, err := s.talent().RegisterForEvent(s.ctx, &talentv1.RegisterForEventRequest{EventId: args[0], Attendee: a})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return registrationTable(resp.GetRegistration()) })
	})
	f := cmd.Flags()
	f.StringVar(&a.Name, "name", "", "attendee's name")
	f.StringVar(&a.Organization, "organization", "", "attendee's organisation")
	f.StringVar(&a.Role, "role", "", "attendee's job")
	f.StringVar(&a.Phone, "phone", "", "attendee's phone")
	f.StringVar(&a.Email, "email", "", "attendee's e-mail")
	f.StringVar(&a.TalentId, "talent", "", "the attendee's talent profile ID, to credit hours to")
	return cmd
}

func eventsCheckin(c *conn) *cobra.Command {
	var version int64
	cmd := &cobra.Command{Use: "checkin REGISTRATION_ID", Short: "Check an attendee in (the host)", Args: oneArg("REGISTRATION_ID")}
	cmd.RunE = c.run("check in", true, func(s *session, args []string) error {
		resp, err := s.talent().CheckIn(s.ctx, &talentv1.CheckInRequest{Id: args[0], Version: version})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table { return registrationTable(resp.GetRegistration()) })
	})
	cmd.Flags().Int64Var(&version, "version", 0, "fail unless the registration is at this version (0: any)")
	return cmd
}

func talentsCmd() *cobra.Command {
	c := &conn{}
	cmd := nounCmd("talents", "Look up people in the talent base", c)
	req := &talentv1.ListTalentsRequest{}
	list := &cobra.Command{Use: "list", Short: "List talents", Args: cobra.NoArgs}
	list.RunE = c.run("list talents", true, func(s *session, _ []string) error {
		resp, err := s.talent().ListTalents(s.ctx, req)
		if err != nil {
			return err
		}
		defer s.nextPage(resp.GetNextPageToken())
		return s.print(resp, func() *cli.Table {
			t := cli.NewTable("ID", "NAME", "ORGANIZATION", "ROLE", "HOURS", "SKILLS")
			for _, p := range resp.GetTalents() {
				t.Row(p.GetId(), p.GetName(), p.GetOrganization(), p.GetRole(), p.GetTotalHours(), strings.Join(p.GetSkills(), "、"))
			}
			return t
		})
	})
	pagingFlags(list, &req.PageSize, &req.PageToken)
	lf := list.Flags()
	lf.StringVar(&req.Skill, "skill", "", "only with this skill")
	enumVar(list, &req.Certification, "certification", "only certified for this job type")
	lf.StringVar(&req.OrganizationCreditCode, "org", "", "only of this organisation (credit code)")
	lf.StringVar(&req.OrganizationContains, "organization", "", "only whose organisation's name contains this")
	lf.StringVar(&req.NameContains, "name", "", "only whose name contains this")

	get := &cobra.Command{Use: "get ID", Short: "Show one talent", Args: oneArg("ID")}
	get.RunE = c.run("get talent", true, func(s *session, args []string) error {
		resp, err := s.talent().GetTalent(s.ctx, &talentv1.GetTalentRequest{Id: args[0]})
		if err != nil {
			return err
		}
		return s.print(resp, func() *cli.Table {
			p := resp.GetTalent()
			t := cli.NewTable("FIELD", "VALUE")
			t.Row("id", p.GetId())
			t.Row("name", p.GetName())
			t.Row("organization", p.GetOrganization()+" ("+p.GetOrganizationCreditCode()+")")
			t.Row("role", p.GetRole())
			t.Row("contact", p.GetPhone()+" "+p.GetEmail())
			t.Row("skills", strings.Join(p.GetSkills(), "、"))
			for _, ct := range p.GetCertifications() {
				t.Row("certification", key(ct.GetJobType())+" "+ct.GetCertificateNumber())
			}
			t.Row("hours", p.GetTotalHours())
			return t
		})
	})
	cmd.AddCommand(list, get)
	return cmd
}
