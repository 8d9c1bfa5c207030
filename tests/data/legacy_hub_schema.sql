-- The schema of a hub.db made by school-edge before the hub moved to Alembic (stop 18, c9c1e71):
-- tests/test_hub_schema.py builds an old hub from it and checks that Hub.open takes it in.
begin;
CREATE TABLE _migrations ( migration_set text not null, name text not null, applied_at real not null, primary key (migration_set, name));
CREATE TABLE "devices" (
   "device_id" TEXT PRIMARY KEY,
   "school_code" TEXT NOT NULL,
   "school_name" TEXT,
   "public_key" TEXT NOT NULL,
   "status" TEXT NOT NULL,
   "enrolled_at" REAL,
   "revoked_at" REAL,
   "last_seen_at" REAL
, downlink_start integer not null default 0);
CREATE INDEX "idx_devices_school_code"
    ON "devices" ("school_code");
CREATE TABLE enrollment_tokens (token_hash text primary key, school_code text not null, school_name text not null default '', created_at real not null, expires_at real not null, used_by text, used_at real);
CREATE TABLE "channels" (
   "id" TEXT PRIMARY KEY,
   "title" TEXT,
   "mandatory" INTEGER,
   "created_at" REAL
);
CREATE TABLE "hub_resources" (
   "id" TEXT PRIMARY KEY,
   "channel" TEXT,
   "meta" TEXT,
   "files" TEXT,
   "updated_at" REAL
);
CREATE INDEX "idx_hub_resources_channel"
    ON "hub_resources" ("channel");
CREATE TABLE "subscriptions" (
   "school_code" TEXT,
   "channel" TEXT,
   "at" REAL,
   PRIMARY KEY ("school_code", "channel")
);
CREATE TABLE "provisionings" (
   "token" TEXT PRIMARY KEY,
   "school_code" TEXT,
   "school_name" TEXT,
   "created_at" REAL
);
CREATE TABLE usage_events (device_id text not null, seq integer not null, ts real not null, actor text not null, verb text not null, object text not null, data text not null, received_at real not null, primary key (device_id, seq)) without rowid;
CREATE TABLE device_usage_state (device_id text primary key, contiguous_seq integer not null, last_batch_hash text not null, updated_at real not null);
CREATE TABLE usage_batches (device_id text not null, batch_hash text not null, first_seq integer not null, last_seq integer not null, prev_hash text not null, events integer not null, received_at real not null, primary key (device_id, batch_hash)) without rowid;
CREATE TABLE downlink_messages (school_code text not null, seq integer not null, kind text not null, payload text not null, created_at real not null, primary key (school_code, seq)) without rowid;
CREATE TABLE downlink_scan (device_id text primary key, scanned_seq integer not null);
CREATE TABLE downlink_reported (device_id text primary key, applied_seq integer not null, at real not null);
CREATE TABLE transfers (transfer_id text primary key, number text not null, from_school text not null, to_school text not null, to_class text not null, status text not null, created_at real not null, received_at real, delivered_seq integer);
CREATE TABLE "usb_offered_uploads" (
   "device_id" TEXT,
   "resource_id" TEXT,
   "school_code" TEXT,
   "meta" TEXT,
   "received_at" REAL,
   PRIMARY KEY ("device_id", "resource_id")
);
CREATE TABLE live_timetable (school_code text not null, lesson text not null, start text not null, minutes integer not null, subject text not null, grade text not null, teacher text not null, title text not null, primary key (school_code, lesson)) without rowid;
CREATE TABLE live_messages (device_id text not null, seq integer not null, school_code text not null, lesson text not null, kind text not null, pupil text not null, body text not null, sent_at real not null, received_at real not null, primary key (device_id, seq)) without rowid;
CREATE INDEX live_messages_lesson on live_messages (lesson, school_code, kind);
CREATE TABLE live_polls (poll_id text primary key, lesson text not null, question text not null, options text not null, started_at real not null, closed_at real);
CREATE TABLE live_teachers (lesson text primary key, token_hash text not null, created_at real not null);
CREATE TABLE live_held (device_id text primary key, held integer not null);
CREATE TABLE rollup (level text not null, start integer not null, dim text not null, device_id text not null, events integer not null, assigned integer not null, handed_in integer not null, learners blob not null, teachers blob not null, primary key (level, start, dim, device_id)) without rowid;
CREATE TABLE rollup_people (device_id text not null, actor text not null, idx integer not null, teacher integer not null, primary key (device_id, actor)) without rowid;
CREATE TABLE rollup_assignments (device_id text not null, assignment text not null, resource text not null, primary key (device_id, assignment)) without rowid;
CREATE TABLE rollup_changes (scope text not null, day integer not null, changed_at real not null, primary key (scope, day)) without rowid;
CREATE TABLE "firmware_releases" (
   "version" TEXT PRIMARY KEY,
   "manifest_sha256" TEXT,
   "size" INTEGER,
   "files" INTEGER,
   "downgrade" INTEGER,
   "published_at" REAL
);
CREATE TABLE "firmware_rollout" (
   "id" INTEGER PRIMARY KEY,
   "rules" TEXT,
   "updated_at" REAL
);
CREATE TABLE fleet_devices (device_id text primary key, school_code text not null, report_seq integer not null, received_at real not null, device_time real not null, clock_offset_s real not null, version text not null, teaching_point text not null, firmware text not null, sync_attempt text not null, sync_success text not null, sync_error text not null, disk_free_bytes integer not null, corrupt_files integer not null, pending_usage integer not null, failed_messages integer not null);
CREATE INDEX fleet_devices_point on fleet_devices (school_code, teaching_point);
CREATE TABLE fleet_history (device_id text not null, report_seq integer not null, received_at real not null, device_time real not null, clock_offset_s real not null, version text not null, teaching_point text not null, firmware text not null, sync_attempt text not null, sync_success text not null, sync_error text not null, disk_free_bytes integer not null, corrupt_files integer not null, pending_usage integer not null, failed_messages integer not null, primary key (device_id, report_seq)) without rowid;
CREATE TABLE hub_settings (key text primary key, value text not null, updated_at real not null);
CREATE TABLE lrs_cursor (device_id text primary key, relayed_seq integer not null, updated_at real not null);
CREATE TABLE lrs_status (id integer primary key check (id = 1), last_pass_at real, last_ok_at real, last_error text not null default '', last_error_at real, sent_total integer not null default 0);
CREATE TABLE console_sessions (
        token_hash text primary key,
        account_id integer not null,
        client text not null default '',
        created_at real not null,
        last_seen real not null,
        expires_at real not null
    );
CREATE INDEX console_sessions_account on console_sessions(account_id);
CREATE TABLE accounts (
        id integer primary key autoincrement,
        name text not null unique collate nocase,
        role text not null,
        school text,                       -- school_head only: the one school they see
        password_hash text not null,
        status text not null default 'active',   -- active | disabled
        created_at real not null,
        updated_at real not null
    );
CREATE TABLE login_failures (
    key text primary key,                 -- acct:<id>, number:<n> or client:<address>
    failures integer not null,
    first_at real not null,
    locked_until real not null default 0
, lock_level integer not null default 0, locked_at real not null default 0, wrong_total integer not null default 0);
CREATE TABLE audit_log (
        id integer primary key autoincrement,
        at real not null,
        actor text not null,        -- the console account's name (or cli:<user>)
        action text not null,       -- approved, rejected, withdrawn, metadata_edited, account_added ...
        target text not null,       -- offer:<id>, resource:<id>, account:<name>
        reason text not null default '',
        details text not null default '{}'
    );
CREATE INDEX audit_target on audit_log(target);
CREATE TRIGGER audit_log_no_update before update on audit_log begin select raise(abort, 'audit_log is append-only'); end;
CREATE TRIGGER audit_log_no_delete before delete on audit_log begin select raise(abort, 'audit_log is append-only'); end;
CREATE TABLE offers (
        id integer primary key autoincrement,
        device_id text not null,
        school_code text not null,
        resource_id text not null,           -- the appliance's id of the teacher's resource
        uploader text not null default '',
        meta text not null,                  -- curriculum metadata (CURRICULUM), as offered or as edited
        files text not null,                 -- [{path, sha256, size, mime}]
        origin text not null,                -- network | usb
        state text not null default 'pending',
        channel text,                        -- approved into
        published_id text,                   -- its id in the channel
        reason text not null default '',
        decided_by text,
        decided_at real,
        received_at real not null,
        unique (device_id, resource_id)
    );
CREATE INDEX offers_state on offers(state, received_at);
CREATE TABLE offer_scan (device_id text primary key, scanned_seq integer not null);
insert into _migrations values ('hub_registry', 'm001_devices', 0);
insert into _migrations values ('hub_registry', 'm002_enrollment_tokens', 0);
insert into _migrations values ('hub_channels', 'm001_channels', 0);
insert into _migrations values ('hub_usage', 'm001_usage', 0);
insert into _migrations values ('hub_downlink', 'm001_downlink', 0);
insert into _migrations values ('hub_usb', 'm001_offered_uploads', 0);
insert into _migrations values ('hub_live_timetable', 'm001_live_timetable', 0);
insert into _migrations values ('hub_live_interaction', 'm001_live_interaction', 0);
insert into _migrations values ('hub_live_interaction', 'm002_live_held', 0);
insert into _migrations values ('hub_rollup', 'm001_rollup', 0);
insert into _migrations values ('hub_rollup', 'm002_changes', 0);
insert into _migrations values ('hub_firmware', 'm001_firmware', 0);
insert into _migrations values ('hub_fleet', 'm001_fleet', 0);
insert into _migrations values ('hub_settings', 'm001_settings', 0);
insert into _migrations values ('hub_lrs', 'm001_lrs_cursor', 0);
insert into _migrations values ('hub_sessions', 'm001_sessions', 0);
insert into _migrations values ('hub_accounts', 'm001_accounts', 0);
insert into _migrations values ('hub_audit', 'm001_audit', 0);
insert into _migrations values ('hub_offers', 'm001_offers', 0);
commit;
