/** The waiting durations Notifyer's dashboard offers, 15 seconds to two months. */
export const WAITING_DURATION_PRESETS: readonly number[] = [
  15, 30, 60, 1800, 3600, 18000, 36000, 86400, 172800, 259200, 432000, 604800, 1209600, 2592000, 5184000,
];

export interface ScheduleSettings {
  scheduleActivity: boolean;
  waitingDuration: number;
}

export type ScheduleCheck = { ok: true; warning?: string } | { ok: false; error: string };

/**
 * Notifyer's rule: waiting_duration is 0 when schedule activity is off. Other
 * values than the presets are accepted by the API but cannot be shown or set
 * in the dashboard, hence a warning rather than a refusal.
 */
export function checkSchedule({ scheduleActivity, waitingDuration }: ScheduleSettings): ScheduleCheck {
  if (!scheduleActivity) {
    if (waitingDuration !== 0) {
      return { ok: false, error: `waiting duration must be 0 when schedule activity is off (got ${waitingDuration}): add --schedule-activity, or drop --waiting-duration` };
    }
    return { ok: true };
  }
  if (!WAITING_DURATION_PRESETS.includes(waitingDuration)) {
    return {
      ok: true,
      warning: `warning: ${waitingDuration} s is not one of the dashboard's waiting durations (${WAITING_DURATION_PRESETS.join(', ')}); Notifyer takes it, but its dashboard cannot show it`,
    };
  }
  return { ok: true };
}
