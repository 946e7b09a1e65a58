package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// CreateSchedule creates a recurring schedule: each occurrence becomes a
// task made from req.Task, with the id "<schedule id>@<UTC time>".
// Creating the same id with the same body again returns the stored
// schedule; another body under the same id is a conflict (409).
func (c *Client) CreateSchedule(ctx context.Context, req ScheduleRequest) (*Schedule, error) {
	var s Schedule
	return &s, c.do(ctx, http.MethodPost, "/v1/schedules", nil, req, &s)
}

// GetSchedule returns a schedule with its next runs and its latest
// occurrences.
func (c *Client) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	var s Schedule
	return &s, c.do(ctx, http.MethodGet, schedulePath(id), nil, nil, &s)
}

// ListSchedules returns every schedule, by id, page by page.
func (c *Client) ListSchedules(ctx context.Context) ([]Schedule, error) {
	var all []Schedule
	token := ""
	for {
		var out ScheduleList
		path := "/v1/schedules"
		if token != "" {
			path += "?page_token=" + url.QueryEscape(token)
		}
		if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
			return all, err
		}
		all = append(all, out.Schedules...)
		if token = out.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// UpdateSchedule changes the fields req sets (with ifVersion not 0, only
// if the schedule is still at that version: else a 412).
func (c *Client) UpdateSchedule(ctx context.Context, id string, req ScheduleRequest, ifVersion uint64) (*Schedule, error) {
	var h http.Header
	if ifVersion != 0 {
		h = http.Header{"If-Match": {strconv.FormatUint(ifVersion, 10)}}
	}
	var s Schedule
	return &s, c.do(ctx, http.MethodPatch, schedulePath(id), h, req, &s)
}

// PauseSchedule stops a schedule's occurrences until it is resumed.
func (c *Client) PauseSchedule(ctx context.Context, id string) (*Schedule, error) {
	var s Schedule
	return &s, c.do(ctx, http.MethodPost, schedulePath(id)+"/pause", nil, nil, &s)
}

// ResumeSchedule resumes a schedule from its next run after now.
func (c *Client) ResumeSchedule(ctx context.Context, id string) (*Schedule, error) {
	var s Schedule
	return &s, c.do(ctx, http.MethodPost, schedulePath(id)+"/resume", nil, nil, &s)
}

// DeleteSchedule deletes a schedule and its occurrences that have not
// started.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, schedulePath(id), nil, nil, nil)
}

func schedulePath(id string) string { return "/v1/schedules/" + url.PathEscape(id) }
