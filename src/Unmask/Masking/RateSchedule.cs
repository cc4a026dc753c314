namespace Unmask.Masking;

public enum RateScheduleKind { Constant, Linear, Cosine }

/// <summary>
/// How the masking rate moves from the start rate (<see cref="MaskingOptions.Rate"/>) to <see cref="EndRate"/> over
/// training: constant (the end rate is ignored), linear, or a half cosine (flat at both ends).
/// </summary>
public sealed record RateSchedule(RateScheduleKind Kind = RateScheduleKind.Constant, double? EndRate = null)
{
    public double At(double startRate, double progress)
    {
        if (Kind == RateScheduleKind.Constant || EndRate is not { } end) return startRate;
        double p = Math.Clamp(progress, 0, 1);
        double shape = Kind == RateScheduleKind.Linear ? p : (1 - Math.Cos(Math.PI * p)) / 2;
        return startRate + (end - startRate) * shape;
    }

    public void Validate()
    {
        if (Kind != RateScheduleKind.Constant && EndRate is null)
            throw new UnmaskException($"schedule.end_rate is required for a {Kind.ToString().ToLowerInvariant()} rate schedule");
        if (EndRate is { } e && e is <= 0 or >= 1) throw new UnmaskException($"schedule.end_rate must be in (0, 1), got {e}");
    }
}
